"""Alert mail against a real local SMTP server (aiosmtpd): content, TLS verification, login order, outages."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ingest.config import AlertsConfig
from ingest.mail import Mailer, Outgoing, PermanentMailError, send_now
from tests.conftest import free_port
from tests.fixtures_smtp import self_signed_cert, smtp_server  # noqa: F401  (fixtures)

RECIPIENTS = ("data-team@example.com", "oncall@example.com")


def alerts_for(server_port: int, **overrides) -> AlertsConfig:
    base = dict(
        recipients=RECIPIENTS, sender="datadesk@example.com", smtp_host="127.0.0.1",
        smtp_port=server_port, starttls=False,
    )
    base.update(overrides)
    return AlertsConfig(**base)


def test_a_plain_relay_gets_subject_recipients_and_body(smtp_server):
    server = smtp_server()
    send_now(alerts_for(server.port), "[datadesk] ALERT worker down", "The worker's heartbeat is 130 s old.\n결제 테이블")
    (got,) = server.wait_for(1, 5)
    assert got.subject == "[datadesk] ALERT worker down"
    assert sorted(got.rcpt_tos) == sorted(RECIPIENTS)
    assert got.mail_from == "datadesk@example.com"
    assert str(got.message["To"]) == ", ".join(RECIPIENTS)
    assert "heartbeat is 130 s old" in got.body and "결제 테이블" in got.body
    assert server.logins == []  # no SMTP_USER: no login attempted


def test_starttls_rejects_a_certificate_nobody_vouches_for(smtp_server, self_signed_cert):
    server = smtp_server(cert=self_signed_cert)
    cfg = alerts_for(server.port, starttls=True, smtp_user="alerts", smtp_password="s3cret")
    with pytest.raises(PermanentMailError, match="certificate did not verify"):
        send_now(cfg, "subject", "body")
    time.sleep(0.2)
    assert server.messages == []
    assert server.logins == []  # the password never went to an unverified server


def test_starttls_with_the_operators_ca_verifies_and_logs_in_only_after_tls(smtp_server, self_signed_cert):
    server = smtp_server(cert=self_signed_cert)
    cfg = alerts_for(server.port, starttls=True, smtp_user="alerts", smtp_password="s3cret", ca_file=self_signed_cert[0])
    send_now(cfg, "[datadesk] ALERT lag", "body text")
    (got,) = server.wait_for(1, 5)
    assert got.over_tls and got.subject == "[datadesk] ALERT lag"
    # The server would have accepted AUTH in clear text; the client still waited for TLS.
    assert server.logins == [("alerts", "s3cret", True)]


def test_ca_from_ssl_cert_file_env_is_honoured_too(smtp_server, self_signed_cert, monkeypatch):
    """The system trust store can be pointed elsewhere (SSL_CERT_FILE) instead of [alerts] ca_file."""
    server = smtp_server(cert=self_signed_cert)
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed_cert[0]))
    send_now(alerts_for(server.port, starttls=True), "via env CA", "b")
    assert server.wait_for(1, 5)[0].over_tls


def test_credentials_are_never_sent_without_tls(smtp_server):
    server = smtp_server()
    with pytest.raises(PermanentMailError, match="refusing to send the password"):
        send_now(alerts_for(server.port, smtp_user="alerts", smtp_password="s3cret"), "s", "b")
    assert server.logins == [] and server.messages == []


def test_a_down_server_delays_the_mail_but_never_blocks_the_caller(smtp_server):
    port = free_port()  # nothing listens here yet
    outcomes: list[Outgoing] = []
    done = threading.Event()

    def on_outcome(m):
        outcomes.append(m)
        done.set()

    mailer = Mailer(alerts_for(port), on_outcome=on_outcome, first_retry_seconds=0.2, max_retry_seconds=0.5, timeout=2)
    try:
        t0 = time.monotonic()
        mailer.submit(Outgoing(id="a1", subject="[datadesk] ALERT worker down", body="b1"))
        mailer.submit(Outgoing(id="r1", subject="[datadesk] RECOVERED worker down", body="b2"))
        assert time.monotonic() - t0 < 0.05  # submit only queues
        time.sleep(1.0)
        assert outcomes == []  # still retrying, nothing lost, nothing reported as sent
        server = smtp_server(port=port)
        got = server.wait_for(2, 10)
        assert [g.subject for g in got] == ["[datadesk] ALERT worker down", "[datadesk] RECOVERED worker down"]
        deadline = time.monotonic() + 5
        while len(outcomes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(m.id, m.delivered) for m in outcomes] == [("a1", True), ("r1", True)]
        assert outcomes[0].attempts >= 2  # it really was retried
    finally:
        mailer.close(grace=1)


def test_a_permanent_refusal_is_reported_once_not_retried(smtp_server, self_signed_cert):
    server = smtp_server(cert=self_signed_cert, accept_login=False)
    outcomes: list[Outgoing] = []
    cfg = alerts_for(server.port, starttls=True, smtp_user="alerts", smtp_password="wrong", ca_file=self_signed_cert[0])
    mailer = Mailer(cfg, on_outcome=outcomes.append, first_retry_seconds=0.1)
    mailer.submit(Outgoing(id="x", subject="s", body="b"))
    mailer.close(grace=10)
    assert len(outcomes) == 1 and not outcomes[0].delivered and outcomes[0].attempts == 1
    assert "login refused" in outcomes[0].error
    assert server.messages == []


def test_without_smtp_host_the_alert_goes_to_the_log(caplog):
    outcomes: list[Outgoing] = []
    mailer = Mailer(AlertsConfig(recipients=RECIPIENTS), on_outcome=outcomes.append)
    with caplog.at_level(logging.WARNING, logger="ingest.mail"):
        mailer.submit(Outgoing(id="l", subject="[datadesk] ALERT worker down", body="heartbeat 130 s old"))
    mailer.close(grace=1)
    assert "[datadesk] ALERT worker down" in caplog.text and "heartbeat 130 s old" in caplog.text
    assert [(m.channel, m.delivered) for m in outcomes] == [("log", False)]
