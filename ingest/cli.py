"""`python -m ingest <command>`: one entry point for every pipeline process.

Exit codes (docs/contracts.md): 0 done, 2 bad configuration or usage (the message
names file, key and what was expected), 1 anything else, with a one-line
reason on stderr. Each command imports its module lazily so that, say, the
broker launcher works before the rest of the stack is installed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.config import ConfigError, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ingest", description="Self-service data desk: pipeline processes.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp):
        sp.add_argument("--config", metavar="PATH", help="pipeline.toml (default: env PIPELINE_CONFIG, else ./pipeline.toml)")
        return sp

    b = sub.add_parser("broker", help="embedded Kafka-protocol broker (Tansu), foreground")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--host", default="127.0.0.1")

    s = with_config(sub.add_parser("simulate", help="demo source: create it, then keep the business moving"))
    s.add_argument("--once", action="store_true", help="create/seed the history and exit")
    s.add_argument("--seed", type=int, default=None, help="random seed for the history (reproducible demo)")

    e = with_config(sub.add_parser("export", help="copy changed source rows to Kafka, every interval"))
    e.add_argument("--once", action="store_true", help="run one pass and exit")
    e.add_argument("--reset-watermarks", action="store_true",
                   help="start from an empty watermark (the demo's broker forgets its topics on restart)")

    w = with_config(sub.add_parser("worker", help="land Kafka batches into DuckDB, exactly once"))
    w.add_argument("--until-idle", action="store_true", help="exit 0 once no message has arrived for a few seconds")
    w.add_argument("--transport-reset", action="store_true",
                   help="the broker was replaced by an empty one (demo): forget stored offsets and read from the start")
    w.add_argument("--from-beginning", action="store_true",
                   help="re-read every topic from its first offset (re-delivery is harmless: newer rows are never overwritten)")
    w.add_argument("--worker-id", metavar="ID",
                   help="lake mode: this worker's name among several (default [worker] id, else the host name)")

    rp = with_config(sub.add_parser("replay", help="land dead letters that pass today's rules (after a fix), exactly once"))
    rp.add_argument("--table", metavar="T", help="only this table's dead letters")
    rp.add_argument("--since", metavar="TIME", type=_timestamp,
                    help="only dead letters received since TIME (ISO-8601, e.g. 2026-11-24 or 2026-11-24T09:00+09:00)")

    m = with_config(sub.add_parser("maintain", help="lake mode: merge small files, expire old snapshots, delete unneeded files"))
    m.add_argument("--every", type=float, metavar="SECONDS", help="keep running, once every SECONDS (default: once and exit)")

    d = with_config(sub.add_parser("watchdog", help="e-mail when the worker stops, and when it recovers"))
    d.add_argument("--once", action="store_true", help="check once and exit")

    sc = with_config(sub.add_parser("scheduler", help="send subscribed reports and data alerts by e-mail, once per slot"))
    sc.add_argument("--once", action="store_true", help="one round (plan, check alerts, send what is due) and exit")
    sc.add_argument("--clock-file", metavar="PATH", type=Path, help=argparse.SUPPRESS)  # tests: the time is read from this file

    a = with_config(sub.add_parser("app", help="the Streamlit app, with its sign-in secrets in place (loopback by default)"))
    a.add_argument("--port", type=int, default=8501, help="Streamlit port")
    a.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default loopback: a TLS reverse proxy faces people, deploy/nginx-datadesk.conf)")
    r = with_config(sub.add_parser("run", help="the whole demo: broker, simulator, exporter, worker, watchdog, app"))
    r.add_argument("--port", type=int, default=8501, help="Streamlit port")
    r.add_argument("--broker-port", type=int, default=9092)
    return p


# Every time stamp in the logs is Seoul time, the business's zone: the data, the
# exporter's watermarks and the reports' days are all Asia/Seoul, whatever the
# machine's own zone (a server in UTC printed 00:16 beside watermarks of 09:16).
LOG_ZONE = ZoneInfo("Asia/Seoul")
# Set by `python -m ingest run`, whose supervisor already starts every line with the time and the process name.
PREFIXED_ENV = "INGEST_LOG_PREFIXED"


class _LogFormatter(logging.Formatter):
    """`2026-11-24 09:13:55+09:00 worker WARNING …` alone; `WARNING: …` (nothing for INFO) under the supervisor."""

    def __init__(self, command: str, prefixed: bool):
        super().__init__()
        self.command, self.prefixed = command, prefixed

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.prefixed:
            return text if record.levelno < logging.WARNING else f"{record.levelname}: {text}"
        stamp = datetime.fromtimestamp(record.created, LOG_ZONE).isoformat(sep=" ", timespec="seconds")
        return f"{stamp} {self.command} {record.levelname} {text}"


def _timestamp(text: str):
    """--since: ISO-8601; a date or a time without an offset is Asia/Seoul time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time, e.g. 2026-11-24 or 2026-11-24T09:00+09:00") from None
    return value if value.tzinfo else value.replace(tzinfo=LOG_ZONE)


def _setup_logging(command: str) -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter(command, prefixed=os.environ.get(PREFIXED_ENV) == "1"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler])
    # kafka-python logs every reconnect attempt at WARNING/ERROR; our own
    # worker says once when the broker goes away and once when it is back.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)



def _quiet_streamlit() -> None:
    """Keep Streamlit's "no runtime found" warnings out of the scheduler's log.

    The scheduler renders with the app's reader, which caches through Streamlit; Streamlit
    warns that no server runs as soon as the cached functions are defined (at import), and
    resets its log level from its config when that is first read. So: quiet before the
    import, and tell the config the same through its environment variable.
    """
    os.environ["STREAMLIT_LOGGER_LEVEL"] = "error"
    import streamlit.logger

    streamlit.logger.set_log_level("error")

def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already
        return int(exc.code or 0)
    _setup_logging(args.command)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # the one-line reason; the log above has details
        logging.getLogger("ingest").debug("failed", exc_info=True)
        print(f"{args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "broker":
        from ingest.broker import BrokerBinaryMissing, run_foreground

        try:
            return run_foreground(args.port, args.host)
        except BrokerBinaryMissing as exc:
            print(f"broker: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.command == "worker":
        cfg = load_config(args.config, needs=("kafka", "warehouse", "tables"))
        from ingest.worker import run_worker

        return run_worker(cfg, until_idle=args.until_idle, transport_reset=args.transport_reset,
                          from_beginning=args.from_beginning, worker_id=args.worker_id)
    if args.command == "export":
        cfg = load_config(args.config, needs=("source", "kafka", "exporter", "tables"))
        from ingest.export import run_exporter

        return run_exporter(cfg, once=args.once, reset_watermarks=args.reset_watermarks)
    if args.command == "simulate":
        cfg = load_config(args.config, needs=("source", "tables"))
        from ingest.simulate import run_simulator

        return run_simulator(cfg, once=args.once, seed=args.seed)
    if args.command == "replay":
        cfg = load_config(args.config, needs=("kafka", "warehouse", "tables"))
        from ingest.replay import run_replay

        return run_replay(cfg, table=args.table, since=args.since)
    if args.command == "maintain":
        cfg = load_config(args.config, needs=("warehouse",))
        from ingest.warehouse_lake import run_maintenance

        return run_maintenance(cfg.warehouse, every=args.every)
    if args.command == "watchdog":
        cfg = load_config(args.config, needs=("warehouse", "alerts"))
        from ingest.watchdog import run_watchdog

        return run_watchdog(cfg, once=args.once)
    if args.command == "scheduler":
        cfg = load_config(args.config, needs=("warehouse", "alerts"))
        _quiet_streamlit()
        from dashboard.subscriptions.sender import run_scheduler

        return run_scheduler(cfg, once=args.once, clock_file=args.clock_file)
    if args.command == "app":
        from ingest.app_launch import run_app

        return run_app(args.config, port=args.port, address=args.address)
    if args.command == "run":
        from ingest.supervisor import run_all

        return run_all(args.config, app_port=args.port, broker_port=args.broker_port)
    raise AssertionError(args.command)
