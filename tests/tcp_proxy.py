"""A tiny TCP proxy for outage tests: cut, then restore, the worker's road to the broker.

The embedded broker keeps topics in memory, so stopping it would lose them;
cutting the network in between is the honest way to test an outage. The
broker must advertise the proxy's address, or clients would reconnect
around it.
"""

from __future__ import annotations

import socket
import struct
import threading


class TcpProxy:
    """Forwards 127.0.0.1:listen_port to `target` until cut; counts the connections it refused while cut.

    A cut resets every new connection at once (the client sees its connection
    refused/reset, as with a closed port) instead of closing the port: the
    listener stays, so `refused` can count the client's reconnect attempts and
    a test can wait for "it retried N times" instead of sleeping.
    """

    def __init__(self, listen_port: int, target: tuple[str, int]):
        self.listen_port = listen_port
        self.target = target
        self.refused = 0  # connections reset while cut
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._open = False

    def start(self) -> "TcpProxy":
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.listen_port))
        self._server.listen(64)
        self._open = True
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self._open = False
        self._drop_connections()

    def restore(self) -> None:
        self._open = True

    def stop(self) -> None:
        self._open = False
        server, self._server = self._server, None
        if server is not None:
            # close() alone does not wake a thread blocked in accept(): the
            # socket would go on accepting. shutdown() does.
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
        self._drop_connections()

    def _drop_connections(self) -> None:
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # stopped
            if not self._open:
                self.refused += 1
                # Linger 0: close() sends a reset, not an orderly end of stream.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
