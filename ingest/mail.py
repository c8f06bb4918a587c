"""Alert e-mail out: SMTP with a verifying STARTTLS, sent from a background thread.

The watchdog hands every message to `Mailer.submit`, which only puts it on a
queue: an SMTP server that is down, slow or refusing never delays a check. A
thread sends the queue in order and retries a message that failed for a
reason that may pass (connection refused, time-out, 4xx) with exponential
backoff; a permanent refusal (5xx, bad login, a certificate that does not
verify) is reported once and not retried, because retrying cannot fix it.

Without `[alerts] smtp_host` nothing is sent: the alert goes to the log, which
is the demo's default (docs/operations.md, the laptop defaults).

Security decisions:
- STARTTLS uses `ssl.create_default_context()` (certificate and host name are
  verified); smtplib's own default context does not verify anything. A private
  CA is added with `[alerts] ca_file`, never by switching verification off.
- The login (env SMTP_USER / SMTP_PASSWORD, via the config loader) happens
  only after STARTTLS succeeded; with `starttls = false` credentials are never
  sent (a plain relay on port 25 without login is still possible).
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Callable

from ingest.config import AlertsConfig

log = logging.getLogger("ingest.mail")


@dataclass
class Outgoing:
    """One message to deliver; `attempts` and `error` are filled in by the Mailer."""

    id: str
    subject: str
    body: str
    attempts: int = 0
    error: str | None = None
    delivered: bool = False
    channel: str = "smtp"  # smtp | log
    queued_at: float = field(default_factory=time.monotonic)


class PermanentMailError(Exception):
    """Retrying will not help (5xx, login refused, certificate rejected, bad settings)."""


def tls_context(alerts: AlertsConfig) -> ssl.SSLContext:
    """The system's verifying context, plus the operator's own CA if configured."""
    ctx = ssl.create_default_context()
    if alerts.ca_file is not None:
        ctx.load_verify_locations(cafile=str(alerts.ca_file))
    return ctx


def compose(alerts: AlertsConfig, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = alerts.sender
    msg["To"] = ", ".join(alerts.recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=alerts.sender.rpartition("@")[2] or None)
    msg.set_content(body)
    return msg


def send_now(alerts: AlertsConfig, subject: str, body: str, timeout: float = 15.0) -> None:
    """Deliver one message synchronously; raises PermanentMailError or a transient error.

    Returns only after the server accepted the message for every recipient.
    """
    send_message(alerts, compose(alerts, subject, body), timeout)


def send_message(alerts: AlertsConfig, msg: EmailMessage, timeout: float = 15.0) -> None:
    """Deliver a composed message (its own To/Cc) through `[alerts]`'s server; same errors as `send_now`.

    The subscription mails (dashboard/subscriptions/) carry attachments and
    their own recipients; they go through this one door so TLS and login rules
    stay in one place.
    """
    subject = str(msg["Subject"])
    if not alerts.smtp_host:
        raise PermanentMailError("no [alerts] smtp_host configured")
    if alerts.smtp_user and not alerts.starttls:
        raise PermanentMailError(
            "SMTP_USER is set but [alerts] starttls = false — refusing to send the password unencrypted; "
            "set starttls = true (port 587) or unset SMTP_USER for a plain relay"
        )
    try:
        with smtplib.SMTP(alerts.smtp_host, alerts.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if alerts.starttls:
                smtp.starttls(context=tls_context(alerts))
                smtp.ehlo()
            if alerts.smtp_user:
                smtp.login(alerts.smtp_user, alerts.smtp_password or "")
            refused = smtp.send_message(msg)
    except ssl.SSLCertVerificationError as exc:
        raise PermanentMailError(
            f"the SMTP server's certificate did not verify ({exc.verify_message}) — "
            "fix the server's certificate or add its CA with [alerts] ca_file"
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentMailError(f"{alerts.smtp_host}:{alerts.smtp_port} does not offer STARTTLS ({exc})") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentMailError(f"login refused ({exc.smtp_code}) — check SMTP_USER / SMTP_PASSWORD") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentMailError(f"every recipient was refused: {sorted(exc.recipients)}") from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise PermanentMailError(f"server refused the message: {exc.smtp_code} {exc.smtp_error!r}") from exc
        raise
    if refused:
        log.warning("mail %r: some recipients were refused: %s", subject, sorted(refused))


class Mailer:
    """Sends `Outgoing` messages in order from one background thread.

    `submit` never blocks. `on_outcome(message)` is called from the mail thread
    once per message, when it was delivered, logged, or given up.
    """

    def __init__(
        self,
        alerts: AlertsConfig,
        on_outcome: Callable[[Outgoing], None] | None = None,
        first_retry_seconds: float = 5.0,
        max_retry_seconds: float = 300.0,
        max_attempts: int = 30,
        timeout: float = 15.0,
    ):
        self.alerts = alerts
        self.on_outcome = on_outcome or (lambda m: None)
        self.first_retry = first_retry_seconds
        self.max_retry = max_retry_seconds
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._queue: queue.Queue[Outgoing | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailer", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.alerts.smtp_host)

    def submit(self, message: Outgoing) -> None:
        if not self.enabled:
            message.channel = "log"
            log.warning("ALERT (no smtp_host, not mailed) %s\n%s", message.subject, message.body)
            self._report(message)
            return
        self._queue.put(message)

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, grace: float = 5.0) -> None:
        """Give the queue up to `grace` seconds to drain, then stop the thread."""
        self._queue.put(None)
        self._thread.join(grace)
        self._stop.set()
        self._thread.join(1.0)
        if self._thread.is_alive() or not self._queue.empty():
            log.warning("mailer stopped with undelivered alert mail (the alert history shows which)")

    def _report(self, message: Outgoing) -> None:
        try:
            self.on_outcome(message)
        except Exception:  # a broken history file must not kill the mail thread
            log.exception("recording the outcome of mail %r failed", message.subject)

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._queue.get()
            if message is None:
                return
            self._deliver(message)

    def _deliver(self, message: Outgoing) -> None:
        delay = self.first_retry
        while not self._stop.is_set():
            message.attempts += 1
            try:
                send_now(self.alerts, message.subject, message.body, self.timeout)
            except PermanentMailError as exc:
                message.error = str(exc)
                log.error("alert mail %r not sent: %s", message.subject, exc)
                self._report(message)
                return
            except (OSError, smtplib.SMTPException) as exc:
                message.error = f"{type(exc).__name__}: {exc}"
                if message.attempts >= self.max_attempts:
                    log.error("alert mail %r given up after %d attempts: %s", message.subject, message.attempts, message.error)
                    self._report(message)
                    return
                log.warning(
                    "alert mail %r: attempt %d failed (%s); retrying in %.0f s",
                    message.subject, message.attempts, message.error, delay,
                )
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.max_retry)
                continue
            message.delivered = True
            message.error = None
            log.info("alert mail sent: %s (attempt %d)", message.subject, message.attempts)
            self._report(message)
            return
