"""Subscriptions and data alerts: reports that arrive by e-mail on a schedule, and mails when a measure crosses a line.

Modules, in the order a mail is made:

- `schedule.py`  when: the slots of a schedule (pure; the clock is passed in)
- `store.py`     what: subscriptions, alerts and the delivery log in the app-state store
- `render.py`    the report's result → attachment and a short table, in the subscriber's language
- `views.py`     the same for a saved Explore view: loaded by id, periods pinned to the send day, run as its owner
- `compose.py`   the e-mail itself (Korean subject, body and RFC 2231 file names)
- `alerts.py`    conditions on a measure, checked when new data lands or on a timer
- `sender.py`    the loop behind `python -m ingest scheduler`: one mail per slot, across crashes

The forms: `form.py` (the Reports page's "메일로 받기" and the schedule fields)
and `view_form.py` (Explore's, which subscribes to the question as a saved view).

docs/subscriptions.md explains the delivery guarantee and the limits.
"""
