"""A tiny TCP proxy for outage tests: cut, then restore, the worker's road to the broker.

The embedded broker keeps topics in memory, so stopping it would lose them;
cutting the network in between is the honest way to test an outage
(DESIGN.md). The broker must advertise the proxy's address, or clients would
reconnect around it.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, listen_port: int, target: tuple[str, int]):
        self.listen_port = listen_port
        self.target = target
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
        if self._server is not None:
            # close() alone does not wake a thread blocked in accept(): the
            # socket would go on accepting. shutdown() does.
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()

    def _accept(self, server: socket.socket) -> None:
        while self._open:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                return
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
