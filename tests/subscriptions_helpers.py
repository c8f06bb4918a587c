"""Shared by the subscription tests: a config with a real SMTP port, a clock a test moves, mail readers."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import openpyxl

from dashboard.subscriptions.schedule import SEOUL
from tests.fixtures_app import write_app_config


class StepClock:
    """The injected clock: `now()` is whatever the test set last."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def subscription_config(tmp: Path, warehouse: Path, smtp_port: int, subscriptions: str = "") -> Path:
    extra = f"""
[alerts]
sender = "datadesk@example.com"
recipients = ["ops@example.com"]
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
starttls = false

[subscriptions]
check_seconds = 0.1
late_after_seconds = 600
first_retry_seconds = 60
max_retry_seconds = 600
smtp_timeout_seconds = 3
{subscriptions}
"""
    app = f'state_path = "{tmp}/app_state.sqlite"\npublic_url = "http://desk.example"'
    return write_app_config(tmp, warehouse, extra=extra, app=app)


def seoul(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL)


def attachment(msg: EmailMessage):
    """(file name as the client decodes it, bytes) of the mail's one attachment, or None."""
    parts = list(msg.iter_attachments())
    if not parts:
        return None
    (part,) = parts
    return part.get_filename(), part.get_content()


def xlsx_rows(data: bytes) -> tuple[list[str], list[list]]:
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    return [str(h) for h in rows[0]], rows[1:]


def csv_rows(data: bytes | str) -> tuple[list[str], list[list[str]]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    return rows[0], rows[1:]


def text_body(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()
