"""A real local SMTP server (aiosmtpd) for the alert tests, plus a throw-away TLS certificate.

Import the fixtures into a test module: `from tests.fixtures_smtp import smtp_server, self_signed_cert  # noqa: F401`.
"""

from __future__ import annotations

import email
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.conftest import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


@dataclass
class SmtpServer:
    host: str
    port: int
    controller: Controller
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)  # (user, password, over_tls)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        try:
            self.controller.stop()
        except AssertionError:  # already stopped
            pass

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self._lock:
            return list(self.messages)


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        with self.server._lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, session.ssl is not None))
        return "250 OK"


def start_smtp(port: int | None = None, cert: tuple[Path, Path] | None = None, accept_login: bool = True) -> SmtpServer:
    """Start aiosmtpd on 127.0.0.1; with `cert` it offers STARTTLS with that certificate.

    AUTH is accepted even before STARTTLS (auth_require_tls=False) so that a test
    can prove the CLIENT waits for TLS before it logs in.
    """
    port = port or free_port()
    server = SmtpServer("127.0.0.1", port, controller=None)  # type: ignore[arg-type]

    def authenticator(smtp, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else str(auth_data.login)
        password = auth_data.password.decode() if isinstance(auth_data.password, bytes) else str(auth_data.password)
        with server._lock:
            server.logins.append((login, password, session.ssl is not None))
        return AuthResult(success=True) if accept_login else AuthResult(success=False, handled=False)

    kwargs = {"authenticator": authenticator, "auth_require_tls": False}
    if cert is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        kwargs["tls_context"] = ctx
    server.controller = Controller(_Handler(server), hostname="127.0.0.1", port=port, **kwargs)
    server.controller.start()
    return server


@pytest.fixture
def smtp_server():
    """Factory: `smtp_server(port=None, cert=None)`; every server started is stopped afterwards."""
    started: list[SmtpServer] = []

    def start(**kwargs) -> SmtpServer:
        s = start_smtp(**kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1 / localhost, signed by nobody any system trusts."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key
