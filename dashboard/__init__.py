"""App logic the pages share; pages/ stay thin (layout and widgets only).

warehouse.py is the only module that reads DuckDB (read-only, short-lived,
lock-retried connections; results cached by (sql, params, data version)).
"""
