"""`python -m ingest scheduler`: sends each subscription's mail once per slot, and the data alerts' mails.

Each tick (every `[subscriptions] check_seconds`, time from an injected clock):

1. plan     for every active subscription, the latest slot at or before now
            is written into the delivery log as `due` — unless the log has
            it already (the key is (subscription, slot)). Older slots that
            passed while the scheduler was down are logged `missed`: only
            the latest missed slot is sent, marked late.
2. alerts   alerts whose data changed (new batch) or whose interval passed
            are evaluated; a change of state adds one event to mail.
3. deliver  every due row whose attempt time has come is sent, each on its
            own: a failing report or a refusing server affects that row only.

The delivery guarantee (docs/subscriptions.md): claim → mark `sending` →
SMTP → mark `sent`. A row found `sending` after a crash may or may not have
reached the server; it is sent again (at-least-once, counted in `resent`),
with the same Message-ID derived from (subscription, slot), so the rare
duplicate — only when the process dies between the server's "250 OK" and
the log's update — is recognisable as the same mail. We chose this side
because a report that silently never arrives is worse than one that arrives
twice with the same id. An SMTP error that may pass (connection refused,
time-out, 4xx) puts the row back to `due` with an exponential back-off for
that row only; a permanent one (5xx) marks it `failed` with the reason.

Failpoints (ingest/failpoints.py, env INGEST_FAILPOINT): before_send (row
marked sending, nothing sent), after_send (server accepted, log not yet
updated), after_log.
"""

from __future__ import annotations

import logging
import signal
import smtplib
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

from dashboard import app_state, i18n
from dashboard.access import person_for
from dashboard.access.enforce import AccessDenied, acting_as
from dashboard.model import ModelError, model_for
from dashboard.questions import QuestionError
from dashboard.report_runner import QueryFn, reports_dir, run_report, values_from_url
from dashboard.reports import Report, ReportError, parse_report
from dashboard.subscriptions import alerts as alert_rules
from dashboard.subscriptions import store, views
from dashboard.subscriptions.compose import alert_mail, subscription_mail
from dashboard.subscriptions.render import Rendered, render, report_url
from dashboard.subscriptions.schedule import SEOUL, latest_slot, slot_key, slots_between
from ingest.config import PipelineConfig
from ingest.failpoints import Failpoints
from ingest.mail import PermanentMailError, send_message

log = logging.getLogger("ingest.scheduler")


class ReportMissing(FileNotFoundError):
    """A subscription's or alert's report file is gone (renamed or deleted from the reports folder)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(SEOUL)


class FileClock:
    """Tests: the time is whatever ISO text the file holds (a test moves it forward to run a week in seconds)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text(encoding="utf-8").strip()).astimezone(SEOUL)


def settings_url(public_url: str, kind: str, owner_id: int, lang: str) -> str:
    return f"{public_url}/subscriptions?{kind}={owner_id}&lang={lang}"


class Sender:
    """One scheduler's work against one app-state store; `tick()` does one round (the tests call it directly)."""

    def __init__(self, cfg: PipelineConfig, clock: Clock, query: QueryFn, data_version: Callable[[], str],
                 failpoints: Failpoints | None = None, send: Callable = send_message, warehouse=None):
        self.cfg = cfg
        self.subs = cfg.subscriptions
        self.clock = clock
        self.query = query
        self.data_version = data_version
        self.failpoints = failpoints or Failpoints(None)
        self.send = send
        self.domain = cfg.alerts.sender.rpartition("@")[2] or "localhost"
        self.path = app_state.store_path(cfg)
        self._warehouse = warehouse

    @property
    def warehouse(self):
        """The warehouse saved views are compiled against (its model, as the owner may see it)."""
        if self._warehouse is None:
            from dashboard.warehouse import Warehouse

            self._warehouse = Warehouse(self.cfg)
        return self._warehouse

    # ── one round ──────────────────────────────────────────────────────────

    def tick(self) -> None:
        with app_state.connect(self.path) as conn:
            now = self.clock.now()
            self.plan(conn, now)
            self.check_alerts(conn, now)
            if not self.cfg.alerts.smtp_host:
                return  # nothing can be sent; due rows wait (said once at start)
            for row in store.open_deliveries(conn, now):
                self._guarded(f"subscription {row['subscription_id']} slot {row['slot']}", self.deliver, conn, row)
            for row in store.open_alert_events(conn, now):
                self._guarded(f"alert {row['alert_id']} event {row['seq']}", self.deliver_alert, conn, row)

    def _guarded(self, what: str, fn, *args) -> None:
        """One subscription's trouble is logged and left for the next tick; the others go on."""
        try:
            fn(*args)
        except sqlite3.Error:
            raise  # the store itself is broken: nothing else can work either
        except Exception:  # noqa: BLE001
            log.exception("%s: unexpected error; tried again next tick", what)

    # ── 1. plan ────────────────────────────────────────────────────────────

    def plan(self, conn: sqlite3.Connection, now: datetime) -> None:
        for sub in store.subscriptions(conn):
            if sub.paused:
                continue
            due = latest_slot(sub.schedule, now)
            since = max(sub.created_at, sub.updated_at)  # nothing before it was asked for (or while paused)
            if due is None or due <= since:
                continue
            key = slot_key(due)
            last = store.last_logged_slot(conn, sub.id)
            if last is not None and last >= key:
                continue
            after = max(since, datetime.fromisoformat(last)) if last else since
            missed = [slot_key(s) for s in slots_between(sub.schedule, after, due) if s != due]
            late = (now - due).total_seconds() > self.subs.late_after_seconds
            if store.claim_slot(conn, sub.id, key, now=now, late=late, msg_id=store.message_id("sub", sub.id, key, self.domain),
                                missed=missed):
                log.info("subscription %d: slot %s due%s%s", sub.id, key, " (late)" if late else "",
                         f"; {len(missed)} older slot(s) missed while stopped" if missed else "")

    # ── 2. alerts ──────────────────────────────────────────────────────────

    def check_alerts(self, conn: sqlite3.Connection, now: datetime) -> None:
        version = self.data_version()
        for alert in store.alerts(conn):
            if alert.paused or not alert_rules.needs_check(alert, version, now):
                continue
            try:
                with acting_as(person_for(self.cfg.access, alert.owner, alert.owner_groups)):
                    if alert.kind == "view":
                        result = views.measure_total(views.load(conn, alert.ref), self.warehouse, self.query,
                                                     now.date(), alert.measure or "")
                    else:
                        report = self.report(alert.ref, alert.kind)
                        values, _ = values_from_url(report, alert.params, now.date())
                        result = run_report(report, values, self.query)
                active, value = alert_rules.evaluate(alert, result, now)
            except (views.ViewMissing, ReportMissing, AccessDenied) as exc:
                # It cannot be checked until someone acts: its recipients hear so once, not silence.
                reason = ("view_missing" if isinstance(exc, views.ViewMissing) else
                          "no_access" if isinstance(exc, AccessDenied) else "report_missing")
                if store.record_broken(conn, alert.id, reason=reason, now=now, data_version=version, domain=self.domain):
                    log.warning("alert %d cannot be checked (%s): its recipients are told once", alert.id, reason)
                continue
            except Exception as exc:  # noqa: BLE001 - a failing check is logged and tried again, the others are checked
                log.warning("alert %d not checked: %s", alert.id, exc)
                continue
            change = store.record_check(conn, alert.id, active=active, value=value, now=now, data_version=version,
                                        domain=self.domain)
            if change:
                log.info("alert %d %s (value %s)", alert.id, change, value)

    # ── 3. deliver ─────────────────────────────────────────────────────────

    def report(self, ref: str, kind: str = "report") -> Report:
        """The report file to run (saved views, kind 'view', are run by views.py instead)."""
        if kind != "report":
            raise ValueError(f"{kind}:{ref} is not a report")
        path = reports_dir(self.cfg) / f"{ref}.sql"
        if not ref.replace("_", "").isalnum() or not path.is_file():
            raise ReportMissing(ref)
        return parse_report(path.read_text(encoding="utf-8"), path)

    def _backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.subs.first_retry_seconds * 2 ** max(0, attempts - 1), self.subs.max_retry_seconds))

    def deliver(self, conn: sqlite3.Connection, row: sqlite3.Row) -> None:
        sub = store.subscription(conn, row["subscription_id"])
        if sub is None:
            return
        now = self.clock.now()
        scheduled = not row["slot"].startswith("now:")
        slot = datetime.fromisoformat(row["slot"]) if scheduled else None
        late = bool(row["late"]) or (scheduled and (now - slot).total_seconds() > self.subs.late_after_seconds)
        rendered, problem = None, None
        lang = sub.lang
        title = views.remembered_name(sub.params, sub.ref) if sub.kind == "view" else sub.ref
        try:
            # Rendered with the owner's access rules: a mail never holds more than its owner may see.
            with acting_as(person_for(self.cfg.access, sub.owner, sub.owner_groups)):
                if sub.kind == "view":
                    rendered = self._render_view(conn, sub, (slot or now).date())
                    title = rendered.title
                else:
                    report = self.report(sub.ref, sub.kind)
                    title = report.title(lang)
                    rendered = render(report, sub.params, lang=lang, fmt=sub.format, today=(slot or now).date(),
                                      query=self.query, body_rows=self.subs.body_rows,
                                      public_url=self.cfg.app.public_url)
        except AccessDenied:
            with i18n.language(lang):
                problem = i18n.t("mail_no_access", owner=sub.owner or "—")
        except views.ViewMissing:
            with i18n.language(lang):
                problem = i18n.t("mail_view_missing", name=title, id=sub.ref)
        except (QuestionError, ModelError) as exc:
            with i18n.language(lang):
                problem = i18n.t("mail_view_failed", error=str(exc))
        except FileNotFoundError:
            title = sub.ref
            with i18n.language(lang):
                problem = i18n.t("mail_report_missing", ref=f"{sub.ref}.sql")
        except ReportError as exc:
            with i18n.language(lang):
                problem = i18n.t("mail_report_failed", error=str(exc))
        if rendered is not None and rendered.rows == 0 and sub.skip_empty:
            store.finish_delivery(conn, sub.id, row["slot"], state="skipped", now=now, rows=0, late=late)
            log.info("subscription %d slot %s: empty result, skipped (skip when empty)", sub.id, row["slot"])
            return
        msg, linked = subscription_mail(
            sender=self.cfg.alerts.sender, recipients=sub.recipients, msg_id=row["message_id"], lang=lang, now=now,
            title=title, slot=slot, late=late, rendered=rendered,
            settings_url=settings_url(self.cfg.app.public_url, "sub", sub.id, lang),
            max_attachment_bytes=self.subs.max_attachment_bytes, problem=problem,
            intro_key="mail_intro_view" if sub.kind == "view" else "mail_intro")
        if not store.start_attempt(conn, row):
            return  # another scheduler took this attempt
        self.failpoints.hit("before_send")
        try:
            self.send(self.cfg.alerts, msg, self.subs.smtp_timeout_seconds)
        except PermanentMailError as exc:
            store.finish_delivery(conn, sub.id, row["slot"], state="failed", now=now, rows=None, error=str(exc), late=late)
            log.error("subscription %d slot %s: not sent, %s", sub.id, row["slot"], exc)
            return
        except (OSError, smtplib.SMTPException) as exc:
            at = now + self._backoff(row["attempts"] + 1)
            store.retry_later(conn, sub.id, row["slot"], at=at, error=f"{type(exc).__name__}: {exc}")
            log.warning("subscription %d slot %s: mail server unavailable (%s); retrying at %s",
                        sub.id, row["slot"], type(exc).__name__, at.isoformat(timespec="seconds"))
            return
        self.failpoints.hit("after_send")
        size = len(rendered.file_bytes) if rendered else None
        store.finish_delivery(conn, sub.id, row["slot"], state="sent", now=now, rows=rendered.rows if rendered else None,
                              size=size, linked=linked, late=late, error=problem)
        log.info("subscription %d slot %s: sent (%s rows%s%s)", sub.id, row["slot"], rendered.rows if rendered else "no",
                 ", late" if late else "", ", link instead of attachment" if linked else "")
        self.failpoints.hit("after_log")

    def _render_view(self, conn: sqlite3.Connection, sub: store.Subscription, today) -> Rendered:
        """A saved view's mail content, as the acting person (the caller sets the owner)."""
        view = views.load(conn, sub.ref)
        result = views.run(view, self.warehouse, self.query, today, self.cfg.app.max_download_rows)
        return views.render_view(result, lang=sub.lang, fmt=sub.format, today=today, body_rows=self.subs.body_rows,
                                 public_url=self.cfg.app.public_url)

    def _view_alert_words(self, conn: sqlite3.Connection, alert: store.Alert) -> tuple[str, str, str]:
        """(title, link, measure label) of an alert on a saved view; a deleted view keeps its remembered name."""
        title = views.remembered_name(alert.params, alert.ref)
        link = views.view_url(self.cfg.app.public_url, alert.ref, alert.lang)
        label = alert.measure or ""
        with acting_as(person_for(self.cfg.access, alert.owner, alert.owner_groups)), i18n.language(alert.lang):
            try:
                view = views.load(conn, alert.ref)
                model, _, _ = views.question_of(view, self.warehouse)
                title = view.name
            except views.ViewMissing:  # the measure still has its name in the model
                model = model_for(self.warehouse)
            except (AccessDenied, ModelError):
                return title, link, label
            label = views.measure_label(model, alert.measure or "")
        return title, link, label

    def deliver_alert(self, conn: sqlite3.Connection, row: sqlite3.Row) -> None:
        alert = next((a for a in store.alerts(conn) if a.id == row["alert_id"]), None)
        if alert is None:
            return
        now = self.clock.now()
        if alert.kind == "view":
            title, link, label = self._view_alert_words(conn, alert)
        else:
            try:
                report = self.report(alert.ref, alert.kind)
                title = report.title(alert.lang)
                link = report_url(self.cfg.app.public_url, report, alert.params, alert.lang)
            except FileNotFoundError:
                title, link = alert.ref, f"{self.cfg.app.public_url}/reports"
            with i18n.language(alert.lang):
                label = i18n.column_label(alert.measure) if alert.measure else ""
        with i18n.language(alert.lang):
            value = i18n.fmt_number(row["value"]) if row["value"] is not None else i18n.EMPTY
            reason = (i18n.t(f"alert_reason_{row['reason']}", title=title, ref=alert.ref, owner=alert.owner or "—")
                      if row["change"] == "broken" else "")
        msg = alert_mail(
            sender=self.cfg.alerts.sender, recipients=alert.recipients, msg_id=row["message_id"], lang=alert.lang, now=now,
            title=title, condition=alert_rules.condition_text(alert, label, alert.lang), change=row["change"], value=value,
            at=datetime.fromisoformat(row["at"]), settings_url=settings_url(self.cfg.app.public_url, "alert", alert.id, alert.lang),
            report_url=link, reason=reason)
        if not store.start_alert_attempt(conn, row):
            return
        self.failpoints.hit("before_send")
        try:
            self.send(self.cfg.alerts, msg, self.subs.smtp_timeout_seconds)
        except PermanentMailError as exc:
            store.finish_alert_event(conn, alert.id, row["seq"], state="failed", now=now, error=str(exc))
            return
        except (OSError, smtplib.SMTPException) as exc:
            store.retry_alert_later(conn, alert.id, row["seq"], at=now + self._backoff(row["attempts"] + 1),
                                    error=f"{type(exc).__name__}: {exc}")
            return
        self.failpoints.hit("after_send")
        store.finish_alert_event(conn, alert.id, row["seq"], state="sent", now=now)
        log.info("alert %d: %s mail sent", alert.id, row["change"])
        self.failpoints.hit("after_log")


def run_scheduler(cfg: PipelineConfig, once: bool = False, clock_file: Path | None = None) -> int:
    """The process: tick every `[subscriptions] check_seconds` until SIGTERM/SIGINT."""
    from dashboard.warehouse import Warehouse

    if not cfg.alerts.smtp_host:
        log.warning("no [alerts] smtp_host: subscription mails cannot be sent; they wait in the log as due")
    wh = Warehouse(cfg)
    clock: Clock = FileClock(clock_file) if clock_file else SystemClock()
    sender = Sender(cfg, clock, wh.query_uncached, wh.data_version, Failpoints(cfg.failpoint), warehouse=wh)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("scheduler started (store %s, every %g s)", sender.path, cfg.subscriptions.check_seconds)
    while not stop.is_set():
        sender.tick()
        if once:
            break
        stop.wait(cfg.subscriptions.check_seconds)
    return 0
