"""The e-mails: Korean (or English) subject and body, the attachment with an RFC 2231 file name.

`email.message.EmailMessage` with the default policy encodes a non-ASCII
subject as RFC 2047 words and an attachment's file name as RFC 2231
(`filename*0*=utf-8''%EC%9D%BC...`, split into numbered
continuations when long), which common clients decode to Korean —
the part other tools get wrong (garbled Korean and Chinese file names).
The Message-ID is given, derived from (subscription, slot): a mail sent
again after a crash carries the same id, so clients and people can tell.

Nothing personal is added: the body holds the report's result (the
warehouse's allow-list already keeps personal data out) and the
subscription's own settings link; recipients appear only in the headers.
"""

from __future__ import annotations

from datetime import datetime
from html import escape as html_escape
from email.message import EmailMessage
from email.utils import formatdate

from dashboard import i18n
from dashboard.subscriptions.render import Rendered
from dashboard.subscriptions.schedule import SEOUL


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{max(1, round(n / 1000))} KB"


def _base(sender: str, recipients: tuple[str, ...], subject: str, msg_id: str, now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(now.timestamp(), localtime=False)
    msg["Message-ID"] = msg_id
    return msg


def subscription_mail(*, sender: str, recipients: tuple[str, ...], msg_id: str, lang: str, now: datetime,
                      title: str, slot: datetime | None, late: bool, rendered: Rendered | None,
                      settings_url: str, max_attachment_bytes: int, problem: str | None = None,
                      intro_key: str = "mail_intro") -> tuple[EmailMessage, bool]:
    """The mail for one slot; returns (message, linked) — linked when the file was too big and a link went instead.

    `rendered` None with a `problem`: the report could not be run; the mail
    says so (never silent) and carries no attachment.
    """
    with i18n.language(lang):
        brand = i18n.t("mail_brand")
        when = (slot or now).astimezone(SEOUL).strftime("%Y-%m-%d %H:%M")
        subject = i18n.t("mail_subject_late" if late else "mail_subject", brand=brand, title=title, slot=when)
        text: list[str] = [i18n.t(intro_key, title=title)]  # "mail_intro_view" for a saved view
        html: list[str] = [f"<p>{_e(text[0])}</p>"]
        if late and slot is not None:
            text.append(i18n.t("mail_late", slot=when))
            html.append(f"<p><b>{_e(text[-1])}</b></p>")
        linked = False
        if rendered is None:
            text.append(problem or "")
            html.append(f"<p><b>{_e(problem or '')}</b></p>")
        else:
            for p in rendered.problems:
                text.append(i18n.t("mail_param_problem", problem=p))
                html.append(f"<p><b>{_e(text[-1])}</b></p>")
            if rendered.filters_text:
                text.append(f"{i18n.t('mail_params')}: " + "; ".join(rendered.filters_text))
                html.append(f"<p>{_e(text[-1])}</p>")
            if rendered.rows == 0:
                text.append(i18n.t("mail_empty"))
                html.append(f"<p>{_e(text[-1])}</p>")
            else:
                shown = rendered.shown
                caption = (i18n.t("mail_rows", n=i18n.fmt_number(rendered.rows)) if shown >= rendered.rows else
                           i18n.t("mail_first_rows", shown=i18n.fmt_number(shown), n=i18n.fmt_number(rendered.rows)))
                text += [caption, "", rendered.text_table, ""]
                html += [f"<p>{_e(caption)}</p>", rendered.html_table]
                size = len(rendered.file_bytes)
                if size > max_attachment_bytes:
                    linked = True
                    text.append(i18n.t("mail_too_big", size=_size(size), limit=_size(max_attachment_bytes), url=rendered.report_url))
                    html.append(f"<p><b>{_e(text[-1])}</b></p>")
                else:
                    text.append(i18n.t("mail_attached", name=rendered.file_name))
                    html.append(f"<p>{_e(text[-1])}</p>")
            text.append(i18n.t("mail_open_report", url=rendered.report_url))
            html.append(f'<p><a href="{_e(rendered.report_url)}">{_e(text[-1])}</a></p>')
        text.append(i18n.t("mail_settings", url=settings_url))
        html.append(f'<p style="color:#666"><a href="{_e(settings_url)}">{_e(text[-1])}</a></p>')
    msg = _base(sender, recipients, subject, msg_id, now)
    msg.set_content("\n".join(text) + "\n")
    msg.add_alternative(f'<html><body style="font-family:sans-serif">{"".join(html)}</body></html>', subtype="html")
    if rendered is not None and rendered.rows > 0 and not linked:
        maintype, subtype = rendered.mime
        # A CSV says its charset, so clients (and Python's parser) read its Korean as UTF-8.
        params = {"charset": "utf-8"} if maintype == "text" else None
        msg.add_attachment(rendered.file_bytes, maintype=maintype, subtype=subtype, filename=rendered.file_name, params=params)
    return msg, linked


def alert_mail(*, sender: str, recipients: tuple[str, ...], msg_id: str, lang: str, now: datetime, title: str,
               condition: str, change: str, value: str, at: datetime, settings_url: str, report_url: str,
               reason: str = "") -> EmailMessage:
    """One alert mail: the condition became true ('fired'), cleared, or can no longer be checked ('broken', `reason`)."""
    with i18n.language(lang):
        brand = i18n.t("mail_brand")
        subject = i18n.t(f"alert_subject_{change}", brand=brand, title=title, condition=condition)
        lines = [i18n.t(f"alert_{change}", condition=condition, value=value, reason=reason,
                        at=at.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M")),
                 i18n.t("mail_open_report", url=report_url), i18n.t("alert_settings", url=settings_url)]
    msg = _base(sender, recipients, subject, msg_id, now)
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _e(text: str) -> str:
    return html_escape(text, quote=True)
