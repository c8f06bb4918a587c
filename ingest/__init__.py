"""Export → transport → landing: the data's way from the source to DuckDB.

Follow one row: `export.py` (source → Kafka) → `worker.py` (Kafka → batches)
→ `landing.py` (batches → DuckDB). `config.py` reads pipeline.toml,
`envelope.py` is the message contract, `cli.py` is `python -m ingest`.
"""
