"""Subscriptions and data alerts: reports that arrive by e-mail on a schedule, and mails when a measure crosses a line.

Modules, in the order a mail is made:

- `schedule.py`  when: the slots of a schedule (pure; the clock is passed in)
- `store.py`     what: subscriptions, alerts and the delivery log in the app-state store
- `render.py`    the report's result → attachment and a short table, in the subscriber's language
- `compose.py`   the e-mail itself (Korean subject, body and RFC 2231 file names)
- `alerts.py`    conditions on a measure, checked when new data lands or on a timer
- `sender.py`    the loop behind `python -m ingest scheduler`: one mail per slot, across crashes

docs/subscriptions.md explains the delivery guarantee and the limits.
"""
