"""pipeline.toml → typed, validated configuration objects.

Every process (exporter, worker, watchdog, app) loads the same file once at
start and receives plain frozen dataclasses. This is the ONLY module that reads
environment variables, so what a process does is fully visible in its config
object. A process asks only for the sections it needs (`needs=`): the worker
never fails because `[source]` is missing.

Errors name the file, the key and what was expected; the CLI turns a
`ConfigError` into exit code 2.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

DEFAULT_CONFIG_NAME = "pipeline.toml"
CONFIG_ENV = "PIPELINE_CONFIG"

# A table or column name becomes a DuckDB identifier and part of a topic name.
# Keeping them to this shape means they can be quoted safely everywhere.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ConfigError(Exception):
    """A configuration problem a person can fix; message names file, key, expectation."""


# ─────────────────────────────────────────────────────────────── sections ──


@dataclass(frozen=True)
class SourceConfig:
    url: str
    password: str | None = None  # from env SOURCE_PASSWORD, never from the file


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "prepaid"
    partitions: int = 3  # used when the exporter creates a topic
    client_id: str = "datadesk"
    consumer_group: str = "datadesk-worker"  # advisory commits only; DuckDB holds the truth

    def topic_for(self, table: str) -> str:
        return f"{self.topic_prefix}.{table}"


@dataclass(frozen=True)
class WarehouseConfig:
    """Where the warehouse lives.

    Single file (the default): `path` is the DuckDB file; one worker, readers
    take turns with it. Lake mode (`catalog` set): a DuckLake whose catalog is
    a SQLite file (`sqlite:<path>`, one machine) or PostgreSQL
    (`postgres:<libpq conninfo>`), and whose data are Parquet files under
    `data_path`; readers read snapshots and never wait for the writer. `path`
    then only names where the worker keeps its local lock and version files.
    """

    path: Path
    catalog: str | None = None  # "sqlite:<file>" | "postgres:<conninfo>"; None = single DuckDB file
    data_path: Path | None = None  # lake mode: folder of the Parquet files
    keep_snapshots_hours: float = 24.0  # lake mode: `ingest maintain` expires older snapshots
    rewrite_delete_threshold: float = 0.1  # lake mode: `ingest maintain` rewrites files this share deleted

    @property
    def is_lake(self) -> bool:
        return self.catalog is not None

    @property
    def version_path(self) -> Path:
        """Sidecar file holding the data version (last landed batch id)."""
        return self.path.with_name(self.path.name + ".version")

    @property
    def worker_lock_path(self) -> Path:
        """OS lock file held by the one worker for its whole lifetime."""
        return self.path.with_name(self.path.name + ".worker.lock")


@dataclass(frozen=True)
class ExporterConfig:
    interval_seconds: float = 60.0
    chunk_rows: int = 5000
    overlap_seconds: float = 5.0
    state_path: Path = Path("data/exporter_state.json")
    exporter_id: str = "exporter"  # names this exporter in its status records (several may share a broker)
    completeness_seconds: float = 600.0  # how often per-day source counts are sent for the completeness proof; 0 = never
    completeness_days: int = 7  # how many days back (of the watermark column) each completeness pass counts
    max_rows_per_second: float = 0.0  # read ceiling per table at the source; 0 = none
    statement_timeout_seconds: float = 60.0  # the server aborts any exporter statement running longer; 0 = no limit
    slow_read_seconds: float = 2.0  # a read slower than this makes the exporter back off
    max_backoff_seconds: float = 30.0
    failpoint: str | None = None  # env EXPORT_FAILPOINT, tests only: e.g. "after_chunk:2" = SIGKILL itself there


@dataclass(frozen=True)
class WorkerConfig:
    max_batch_rows: int = 50_000
    max_batch_seconds: float = 5.0
    heartbeat_seconds: float = 10.0
    idle_exit_seconds: float = 5.0  # --until-idle: exit after this long without a message
    lock_timeout_seconds: float = 30.0  # how long to wait for readers to release the file
    max_message_bytes: int = 1_048_576  # a larger Kafka message is a dead letter
    # Lake mode, several workers (ingest/leases.py): who this worker is, and how long its partitions stay its own
    # without a renewal before another worker may take them over. Ignored by the single-file warehouse.
    id: str = ""  # "" = this machine's host name; `--worker-id` overrides it
    lease_seconds: float = 15.0


@dataclass(frozen=True)
class AlertsConfig:
    check_seconds: float = 15.0
    alert_after_seconds: float = 120.0
    max_lag_messages: int = 100_000
    mismatch_passes: int = 3  # a completeness difference seen on this many checks in a row is an alert
    hold_down_seconds: float = 30.0  # a problem closes only after staying away this long (no mail storm when flapping)
    recipients: tuple[str, ...] = ()
    sender: str = "datadesk@localhost"
    smtp_host: str | None = None
    smtp_port: int = 587
    starttls: bool = True
    smtp_user: str | None = None  # env SMTP_USER
    smtp_password: str | None = None  # env SMTP_PASSWORD
    state_path: Path = Path("data/watchdog_state.json")  # open alerts, so a restart sends no repeat
    history_path: Path = Path("data/alerts.jsonl")  # every alert and recovery, for the Pipeline page
    ca_file: Path | None = None  # extra CA bundle for the SMTP server's certificate (a private CA); None = system CAs


@dataclass(frozen=True)
class AppConfig:
    max_display_rows: int = 10_000
    max_download_rows: int = 5_000_000
    query_timeout_seconds: float = 30.0
    memory_limit: str = "2GB"
    reports_dir: Path | None = None  # curated reports (*.sql); None = the project's sql/ folder
    state_path: Path = Path("data/app_state.sqlite")  # what the app writes: saved views, subscriptions, audit
    public_url: str = "http://localhost:8501"  # how mails link back to the app (subscription settings, big results)


@dataclass(frozen=True)
class SubscriptionsConfig:
    """The scheduler (`python -m ingest scheduler`): report mails and data alerts (docs/subscriptions.md)."""

    check_seconds: float = 20.0  # how often due slots and alerts are looked at
    late_after_seconds: float = 600.0  # a mail sent later than this after its slot says "late"
    max_attachment_bytes: int = 5_000_000  # above: a link to the app instead of the file, and the mail says so
    body_rows: int = 20  # rows of the short table in the mail's body
    first_retry_seconds: float = 30.0  # SMTP down: back-off per subscription, doubling up to max_retry_seconds
    max_retry_seconds: float = 1800.0
    smtp_timeout_seconds: float = 15.0


@dataclass(frozen=True)
class RowRule:
    """Rows a role may see: `dimension` (a model dimension id, e.g. "merchants.region") `op` `values`."""

    dimension: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class RoleSpec:
    """What one role may see (docs/access.md). `tables` None = every table."""

    name: str
    tables: tuple[str, ...] | None = None
    hide_columns: tuple[str, ...] = ()  # "table.column"
    rows: tuple[RowRule, ...] = ()


@dataclass(frozen=True)
class PersonRule:
    """`match` is an e-mail, "group:<name>" (the OIDC groups claim) or "*" (anyone signed in)."""

    match: str
    role: str


@dataclass(frozen=True)
class AccessConfig:
    """`[access]`: sign-in required; people → roles (first match wins) → what each role sees."""

    people: tuple[PersonRule, ...]
    roles: Mapping[str, RoleSpec]
    admin_role: str = "admin"  # sees everything, and the audit trail
    groups_claim: str = "groups"  # the OIDC claim that lists a person's groups
    provider: str | None = None  # the [auth.<provider>] section of the secrets to sign in with; None = [auth]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    description: str = ""
    hash: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    primary_key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...] = ()
    description: str = ""
    watermark: str | None = None
    soft_delete: str | None = None
    absent_columns: tuple[str, ...] = ()  # source columns deliberately not exported (shown in the app)
    on_type_mismatch: str | None = None  # "dead_letter" (default) | "widen": a value that does not fit its declared type

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class PipelineConfig:
    path: Path
    kafka: KafkaConfig | None = None
    warehouse: WarehouseConfig | None = None
    source: SourceConfig | None = None
    exporter: ExporterConfig | None = None
    worker: WorkerConfig | None = None
    alerts: AlertsConfig | None = None
    app: AppConfig | None = None
    subscriptions: SubscriptionsConfig = field(default_factory=lambda: SubscriptionsConfig())
    access: AccessConfig | None = None  # None: the app runs open (no sign-in, everyone sees everything)
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    pii_hash_key: bytes | None = None  # env PII_HASH_KEY
    failpoint: str | None = None  # env INGEST_FAILPOINT: tests make the worker die at a named step
    # Tests only. env INGEST_POISON_MARKER: a message carrying this text makes the decode stage raise
    # (a fault no check foresees); env INGEST_NARROWING=off: a failing batch stops the worker instead
    # of being narrowed down (the negative control of the hostile-stream test).
    poison_marker: str | None = None
    narrowing: bool = True

    def topics(self) -> dict[str, str]:
        """topic name → table name, for every configured table."""
        assert self.kafka is not None
        return {self.kafka.topic_for(t): t for t in self.tables}


# ──────────────────────────────────────────────────────────────── loading ──


def resolve_config_path(cli_path: str | os.PathLike[str] | None = None) -> Path:
    """--config, else env PIPELINE_CONFIG, else ./pipeline.toml (docs/contracts.md)."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


ALL_SECTIONS = frozenset({"source", "kafka", "warehouse", "exporter", "worker", "alerts", "app", "subscriptions",
                          "access", "tables"})


def load_config(
    path: str | os.PathLike[str] | None = None,
    needs: Iterable[str] = ("kafka", "warehouse", "tables"),
    environ: Mapping[str, str] | None = None,
) -> PipelineConfig:
    """Read and validate the file; sections listed in `needs` must be present.

    Sections not needed are still validated when present (a typo anywhere is
    worth knowing about) but a missing one is not an error.
    """
    env = os.environ if environ is None else environ
    file = resolve_config_path(path)
    name = str(file)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{name}: file not found — pass --config PATH, set {CONFIG_ENV}, "
            f"or run from the folder that holds {DEFAULT_CONFIG_NAME}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML ({exc}) — fix the line it names") from None
    base = file.resolve().parent
    v = _Validator(name, base)
    v.unknown_keys(raw, ALL_SECTIONS, "")
    needs = set(needs)
    # Sections whose every key has a default may be left out; these may not.
    for section in sorted(needs & {"source", "tables"}):
        if section not in raw:
            raise ConfigError(f"{name}: section [{section}] is missing — this process needs it (see deploy/pipeline.example.toml)")

    cfg: dict[str, Any] = {"path": file}
    if "kafka" in raw or "kafka" in needs:
        cfg["kafka"] = _kafka(v, raw.get("kafka", {}), env)
    if "warehouse" in raw or "warehouse" in needs:
        cfg["warehouse"] = _warehouse(v, raw.get("warehouse", {}), env)
    if "source" in raw:
        cfg["source"] = _source(v, raw["source"], env)
    if "exporter" in raw or "exporter" in needs:
        cfg["exporter"] = _exporter(v, raw.get("exporter", {}))
    # Always present, with their defaults where the file leaves them out (the
    # app's Pipeline page reads the alert history even without an [alerts]).
    cfg["worker"] = _worker(v, raw.get("worker", {}))
    cfg["alerts"] = _alerts(v, raw.get("alerts", {}), env)
    cfg["app"] = _app(v, raw.get("app", {}))
    cfg["subscriptions"] = _subscriptions(v, raw.get("subscriptions", {}))
    if "access" in raw:
        cfg["access"] = _access(v, raw["access"])
    if "tables" in raw:
        cfg["tables"] = _tables(v, raw["tables"], needs_watermark="exporter" in needs)
    if cfg.get("exporter") is not None and env.get("EXPORT_FAILPOINT"):
        import dataclasses

        cfg["exporter"] = dataclasses.replace(cfg["exporter"], failpoint=env["EXPORT_FAILPOINT"])
    key = env.get("PII_HASH_KEY")
    cfg["pii_hash_key"] = key.encode("utf-8") if key else None
    cfg["failpoint"] = env.get("INGEST_FAILPOINT") or None
    cfg["poison_marker"] = env.get("INGEST_POISON_MARKER") or None
    cfg["narrowing"] = env.get("INGEST_NARROWING", "on") != "off"
    return PipelineConfig(**cfg)


# ─────────────────────────────────────────────────────────── validation ──


class _Validator:
    def __init__(self, file: str, base: Path):
        self.file = file
        self.base = base

    def fail(self, where: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.file}: {where} {expected}")

    def unknown_keys(self, table: Mapping[str, Any], known: Iterable[str], section: str) -> None:
        known = set(known)
        for key in table:
            if key not in known:
                hint = difflib.get_close_matches(key, sorted(known), n=1)
                where = f"[{section}] {key}" if section else f"[{key}]"
                suggestion = f" — did you mean {hint[0]}?" if hint else f" — known keys: {', '.join(sorted(known))}"
                raise self.fail(where, f"is not a known key{suggestion}")

    def section(self, raw: Any, section: str) -> Mapping[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(f"[{section}]", "must be a table (a [section] header), not a single value")
        return raw

    def get(self, raw: Mapping[str, Any], section: str, key: str, kind: str, default: Any = ..., minimum: float | None = None) -> Any:
        where = f"[{section}] {key}"
        if key not in raw:
            if default is ...:
                raise self.fail(where, f"is missing — expected {kind}")
            return default
        value = raw[key]
        if kind == "a string":
            ok = isinstance(value, str) and value.strip() != ""
        elif kind == "a whole number":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "a number":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind == "true or false":
            ok = isinstance(value, bool)
        elif kind == "a list of strings":
            ok = isinstance(value, list) and all(isinstance(x, str) and x for x in value)
        else:  # pragma: no cover - programming error
            raise AssertionError(kind)
        if not ok:
            raise self.fail(where, f"= {value!r} — expected {kind}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"= {value!r} — expected {kind} of at least {minimum:g}")
        return value

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base / p


def _kafka(v: _Validator, raw: Any, env: Mapping[str, str]) -> KafkaConfig:
    raw = v.section(raw, "kafka")
    v.unknown_keys(raw, {"bootstrap_servers", "topic_prefix", "partitions", "client_id", "consumer_group"}, "kafka")
    servers = env.get("KAFKA_BOOTSTRAP_SERVERS") or v.get(raw, "kafka", "bootstrap_servers", "a string", "127.0.0.1:9092")
    prefix = v.get(raw, "kafka", "topic_prefix", "a string", "prepaid")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", prefix):
        raise v.fail("[kafka] topic_prefix", f"= {prefix!r} — expected letters, digits, '.', '_' or '-' only")
    return KafkaConfig(
        bootstrap_servers=servers,
        topic_prefix=prefix,
        partitions=v.get(raw, "kafka", "partitions", "a whole number", 3, minimum=1),
        client_id=v.get(raw, "kafka", "client_id", "a string", "datadesk"),
        consumer_group=v.get(raw, "kafka", "consumer_group", "a string", "datadesk-worker"),
    )


def _warehouse(v: _Validator, raw: Any, env: Mapping[str, str]) -> WarehouseConfig:
    raw = v.section(raw, "warehouse")
    v.unknown_keys(raw, {"path", "catalog", "data_path", "keep_snapshots_hours", "rewrite_delete_threshold"},
                   "warehouse")
    path = env.get("WAREHOUSE_PATH") or v.get(raw, "warehouse", "path", "a string", "data/warehouse.duckdb")
    catalog = env.get("WAREHOUSE_CATALOG") or v.get(raw, "warehouse", "catalog", "a string", None)
    if catalog is None:
        for key in ("data_path", "keep_snapshots_hours", "rewrite_delete_threshold"):
            if key in raw:
                raise v.fail(f"[warehouse] {key}", "is only used with a DuckLake catalog — add catalog = \"sqlite:data/lake.sqlite\" "
                             "(or \"postgres:dbname=... host=...\"), or remove the key")
        return WarehouseConfig(path=v.path(path))
    kind, _, target = catalog.partition(":")
    if kind not in ("sqlite", "postgres") or not target.strip():
        raise v.fail("[warehouse] catalog", f"= {catalog!r} — expected \"sqlite:<file>\" or \"postgres:<conninfo>\", "
                     "e.g. \"postgres:dbname=datadesk host=127.0.0.1\"")
    if kind == "sqlite":
        catalog = "sqlite:" + str(v.path(target))
    if "data_path" not in raw and not env.get("WAREHOUSE_DATA_PATH"):
        raise v.fail("[warehouse] data_path", "is missing — a DuckLake needs a folder for its Parquet files, "
                     "e.g. data_path = \"data/lake\"")
    data_path = env.get("WAREHOUSE_DATA_PATH") or v.get(raw, "warehouse", "data_path", "a string")
    return WarehouseConfig(
        path=v.path(path), catalog=catalog, data_path=v.path(data_path),
        keep_snapshots_hours=float(v.get(raw, "warehouse", "keep_snapshots_hours", "a number", 24.0, minimum=0)),
        rewrite_delete_threshold=_share(v, raw, "rewrite_delete_threshold", 0.1),
    )


def _share(v: _Validator, raw: Any, key: str, default: float) -> float:
    """A share between 0 and 1 (`[warehouse] rewrite_delete_threshold = 0.1`)."""
    value = float(v.get(raw, "warehouse", key, "a number", default, minimum=0))
    if value > 1:
        raise v.fail(f"[warehouse] {key}", f"= {value:g} — expected a share from 0 to 1, e.g. 0.1 (a tenth of a file's rows)")
    return value


def _source(v: _Validator, raw: Any, env: Mapping[str, str]) -> SourceConfig:
    raw = v.section(raw, "source")
    v.unknown_keys(raw, {"url"}, "source")
    url = env.get("SOURCE_URL") or v.get(raw, "source", "url", "a string")
    if "://" not in url:
        raise v.fail("[source] url", f"= {url!r} — expected an SQLAlchemy URL such as mysql+pymysql://reader@db:3306/prepaid")
    if re.search(r"://[^/@:]+:[^/@]+@", url):
        raise v.fail("[source] url", "contains a password — remove it and set env SOURCE_PASSWORD instead")
    # sqlite:///relative/path is resolved against the config file's folder.
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + str(v.path(url[len("sqlite:///"):]))
    return SourceConfig(url=url, password=env.get("SOURCE_PASSWORD") or None)


def _exporter(v: _Validator, raw: Any) -> ExporterConfig:
    raw = v.section(raw, "exporter")
    v.unknown_keys(raw, {"interval_seconds", "chunk_rows", "overlap_seconds", "state_path", "id", "completeness_seconds",
                           "completeness_days", "max_rows_per_second", "statement_timeout_seconds", "slow_read_seconds",
                           "max_backoff_seconds"}, "exporter")
    return ExporterConfig(
        interval_seconds=float(v.get(raw, "exporter", "interval_seconds", "a number", 60.0, minimum=0)),
        chunk_rows=v.get(raw, "exporter", "chunk_rows", "a whole number", 5000, minimum=1),
        overlap_seconds=float(v.get(raw, "exporter", "overlap_seconds", "a number", 5.0, minimum=0)),
        state_path=v.path(v.get(raw, "exporter", "state_path", "a string", "data/exporter_state.json")),
        exporter_id=v.get(raw, "exporter", "id", "a string", "exporter"),
        completeness_seconds=float(v.get(raw, "exporter", "completeness_seconds", "a number", 600.0, minimum=0)),
        completeness_days=v.get(raw, "exporter", "completeness_days", "a whole number", 7, minimum=1),
        max_rows_per_second=float(v.get(raw, "exporter", "max_rows_per_second", "a number", 0.0, minimum=0)),
        statement_timeout_seconds=float(v.get(raw, "exporter", "statement_timeout_seconds", "a number", 60.0, minimum=0)),
        slow_read_seconds=float(v.get(raw, "exporter", "slow_read_seconds", "a number", 2.0, minimum=0.01)),
        max_backoff_seconds=float(v.get(raw, "exporter", "max_backoff_seconds", "a number", 30.0, minimum=0.1)),
    )


def _worker(v: _Validator, raw: Any) -> WorkerConfig:
    raw = v.section(raw, "worker")
    v.unknown_keys(
        raw,
        {"max_batch_rows", "max_batch_seconds", "heartbeat_seconds", "idle_exit_seconds", "lock_timeout_seconds",
         "max_message_bytes", "id", "lease_seconds"},
        "worker",
    )
    worker_id = v.get(raw, "worker", "id", "a string", "")
    if worker_id and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", worker_id):
        raise v.fail("[worker] id", f"= {worker_id!r} — expected 1 to 64 letters, digits, '.', '_' or '-' "
                     "(it names the worker's lock file and its rows in _meta), e.g. id = \"ingest-2\"")
    return WorkerConfig(
        max_batch_rows=v.get(raw, "worker", "max_batch_rows", "a whole number", 50_000, minimum=1),
        max_batch_seconds=float(v.get(raw, "worker", "max_batch_seconds", "a number", 5.0, minimum=0.01)),
        heartbeat_seconds=float(v.get(raw, "worker", "heartbeat_seconds", "a number", 10.0, minimum=0.1)),
        idle_exit_seconds=float(v.get(raw, "worker", "idle_exit_seconds", "a number", 5.0, minimum=0.1)),
        lock_timeout_seconds=float(v.get(raw, "worker", "lock_timeout_seconds", "a number", 30.0, minimum=0.1)),
        max_message_bytes=v.get(raw, "worker", "max_message_bytes", "a whole number", 1_048_576, minimum=1024),
        id=worker_id,
        lease_seconds=float(v.get(raw, "worker", "lease_seconds", "a number", 15.0, minimum=1.0)),
    )


def _alerts(v: _Validator, raw: Any, env: Mapping[str, str]) -> AlertsConfig:
    raw = v.section(raw, "alerts")
    v.unknown_keys(
        raw,
        {"check_seconds", "alert_after_seconds", "max_lag_messages", "hold_down_seconds", "mismatch_passes", "recipients", "sender", "smtp_host", "smtp_port", "starttls", "state_path", "history_path", "ca_file"},
        "alerts",
    )
    recipients = tuple(v.get(raw, "alerts", "recipients", "a list of strings", []))
    for r in recipients:
        if "@" not in r:
            raise v.fail("[alerts] recipients", f"contains {r!r} — expected e-mail addresses such as data-team@example.com")
    smtp_host = v.get(raw, "alerts", "smtp_host", "a string", None) if "smtp_host" in raw else None
    if smtp_host and not recipients:
        raise v.fail("[alerts] recipients", "is empty — with smtp_host set, list who gets the alerts")
    return AlertsConfig(
        check_seconds=float(v.get(raw, "alerts", "check_seconds", "a number", 15.0, minimum=0.1)),
        alert_after_seconds=float(v.get(raw, "alerts", "alert_after_seconds", "a number", 120.0, minimum=0.1)),
        max_lag_messages=v.get(raw, "alerts", "max_lag_messages", "a whole number", 100_000, minimum=0),
        mismatch_passes=v.get(raw, "alerts", "mismatch_passes", "a whole number", 3, minimum=1),
        hold_down_seconds=float(v.get(raw, "alerts", "hold_down_seconds", "a number",
                                      2 * float(raw.get("check_seconds", 15.0)), minimum=0)),
        recipients=recipients,
        sender=v.get(raw, "alerts", "sender", "a string", "datadesk@localhost"),
        smtp_host=smtp_host,
        smtp_port=v.get(raw, "alerts", "smtp_port", "a whole number", 587, minimum=1),
        starttls=v.get(raw, "alerts", "starttls", "true or false", True),
        smtp_user=env.get("SMTP_USER") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        state_path=v.path(v.get(raw, "alerts", "state_path", "a string", "data/watchdog_state.json")),
        history_path=v.path(v.get(raw, "alerts", "history_path", "a string", "data/alerts.jsonl")),
        ca_file=v.path(v.get(raw, "alerts", "ca_file", "a string")) if "ca_file" in raw else None,
    )


def _app(v: _Validator, raw: Any) -> AppConfig:
    raw = v.section(raw, "app")
    v.unknown_keys(raw, {"max_display_rows", "max_download_rows", "query_timeout_seconds", "memory_limit", "reports_dir", "state_path", "public_url"}, "app")
    memory = v.get(raw, "app", "memory_limit", "a string", "2GB")
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", memory, re.I):
        raise v.fail("[app] memory_limit", f"= {memory!r} — expected a size such as \"2GB\" or \"512MB\"")
    return AppConfig(
        max_display_rows=v.get(raw, "app", "max_display_rows", "a whole number", 10_000, minimum=1),
        max_download_rows=v.get(raw, "app", "max_download_rows", "a whole number", 5_000_000, minimum=1),
        query_timeout_seconds=float(v.get(raw, "app", "query_timeout_seconds", "a number", 30.0, minimum=0.1)),
        memory_limit=memory,
        reports_dir=v.path(v.get(raw, "app", "reports_dir", "a string")) if "reports_dir" in raw else None,
        state_path=v.path(v.get(raw, "app", "state_path", "a string", "data/app_state.sqlite")),
        public_url=v.get(raw, "app", "public_url", "a string", "http://localhost:8501").rstrip("/"),
    )


def _subscriptions(v: _Validator, raw: Any) -> SubscriptionsConfig:
    raw = v.section(raw, "subscriptions")
    numbers = {"check_seconds", "late_after_seconds", "first_retry_seconds", "max_retry_seconds", "smtp_timeout_seconds"}
    v.unknown_keys(raw, numbers | {"max_attachment_bytes", "body_rows"}, "subscriptions")
    d = SubscriptionsConfig()
    floats = {k: float(v.get(raw, "subscriptions", k, "a number", getattr(d, k), minimum=0.01)) for k in numbers}
    return SubscriptionsConfig(
        max_attachment_bytes=v.get(raw, "subscriptions", "max_attachment_bytes", "a whole number", d.max_attachment_bytes, minimum=0),
        body_rows=v.get(raw, "subscriptions", "body_rows", "a whole number", d.body_rows, minimum=0),
        **floats,
    )


_ROW_OPS = ("in", "not_in", "eq", "ne")


def _access(v: _Validator, raw: Any) -> AccessConfig:
    """`[access]`; row-rule dimensions are checked against the model when the app starts (dashboard/access)."""
    raw = v.section(raw, "access")
    v.unknown_keys(raw, {"admin_role", "groups_claim", "provider", "people", "roles"}, "access")
    admin = v.get(raw, "access", "admin_role", "a string", "admin")
    roles: dict[str, RoleSpec] = {admin: RoleSpec(admin)}
    for name, spec in v.section(raw.get("roles", {}), "access.roles").items():
        sec = f"access.roles.{name}"
        if name == admin:
            raise v.fail(f"[{sec}]", f"— the admin role sees everything and takes no rules; give this role another name")
        spec = v.section(spec, sec)
        v.unknown_keys(spec, {"tables", "hide_columns", "rows"}, sec)
        tables = tuple(v.get(spec, sec, "tables", "a list of strings")) if "tables" in spec else None
        hidden = tuple(v.get(spec, sec, "hide_columns", "a list of strings", []))
        for item in hidden:
            if item.count(".") != 1:
                raise v.fail(f"[{sec}] hide_columns", f"has {item!r} — expected \"table.column\"")
        rules = []
        listed = spec.get("rows", [])
        if not isinstance(listed, list):
            raise v.fail(f"[{sec}] rows", "— expected a list of {{ dimension = \"table.column\", op = \"in\", values = [...] }}")
        for i, rule in enumerate(listed):
            where = f"{sec}.rows[{i}]"
            rule = v.section(rule, where)
            v.unknown_keys(rule, {"dimension", "op", "values"}, where)
            op = v.get(rule, where, "op", "a string", "in")
            if op not in _ROW_OPS:
                raise v.fail(f"[{where}] op", f"= {op!r} — expected one of {', '.join(_ROW_OPS)}")
            values = rule.get("values")
            if not isinstance(values, list) or not values or not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in values):
                raise v.fail(f"[{where}] values", "— expected a non-empty list of values, e.g. values = [\"부산\"]")
            rules.append(RowRule(v.get(rule, where, "dimension", "a string"), op, tuple(str(x) for x in values)))
        roles[name] = RoleSpec(name, tables, hidden, tuple(rules))
    people = []
    listed = raw.get("people", [])
    if not isinstance(listed, list) or not listed:
        raise v.fail("[access] people", "— expected a list such as people = [{ match = \"you@example.com\", role = \"admin\" }]"
                     " (without it nobody could sign in)")
    for i, rule in enumerate(listed):
        where = f"access.people[{i}]"
        rule = v.section(rule, where)
        v.unknown_keys(rule, {"match", "role"}, where)
        role = v.get(rule, where, "role", "a string")
        if role not in roles:
            raise v.fail(f"[{where}] role", f"= {role!r} — no such role; known roles: {', '.join(sorted(roles))}")
        people.append(PersonRule(v.get(rule, where, "match", "a string").strip().lower(), role))
    return AccessConfig(tuple(people), roles, admin, v.get(raw, "access", "groups_claim", "a string", "groups"),
                        v.get(raw, "access", "provider", "a string") if "provider" in raw else None)


def _tables(v: _Validator, raw: Any, needs_watermark: bool) -> dict[str, TableSpec]:
    if not isinstance(raw, dict) or not raw:
        raise v.fail("[tables]", "is empty — add at least one [tables.<name>] section with primary_key and columns")
    out: dict[str, TableSpec] = {}
    for name, spec in raw.items():
        sec = f"tables.{name}"
        if not _IDENT.match(name):
            raise v.fail(f"[{sec}]", "— a table name must be letters, digits and '_' (starting with a letter)")
        if name == "_control":  # its topic would be the control topic (ingest/control.py)
            raise v.fail(f"[{sec}]", "— the name _control is reserved for the exporter's status records; rename the table")
        spec = v.section(spec, sec)
        v.unknown_keys(spec, {"primary_key", "watermark", "soft_delete", "description", "columns", "absent_columns",
                              "on_type_mismatch"}, sec)
        if "primary_key" not in spec:
            raise v.fail(f"[{sec}] primary_key", f"is missing — list the key columns, e.g. primary_key = [\"{name.rstrip('s')}_id\"]")
        pk = tuple(v.get(spec, sec, "primary_key", "a list of strings"))
        if not pk:
            raise v.fail(f"[{sec}] primary_key", "is empty — list at least one key column")
        columns = _columns(v, spec.get("columns", {}), sec)
        names = {c.name for c in columns}
        for key in pk:
            if not _IDENT.match(key):
                raise v.fail(f"[{sec}] primary_key", f"contains {key!r} — expected column names")
            if columns and key not in names:
                raise v.fail(f"[{sec}] primary_key", f"names {key!r}, which is not under [{sec}.columns] — add it there")
        watermark = v.get(spec, sec, "watermark", "a string", None) if "watermark" in spec else None
        if needs_watermark and watermark is None:
            raise v.fail(f"[{sec}] watermark", "is missing — name the indexed change column the exporter reads by, e.g. watermark = \"updated_at\"")
        soft_delete = v.get(spec, sec, "soft_delete", "a string", None) if "soft_delete" in spec else None
        for key, col in (("watermark", watermark), ("soft_delete", soft_delete)):
            if col is not None and columns and col not in names:
                raise v.fail(f"[{sec}] {key}", f"= {col!r} is not under [{sec}.columns] — add it there")
        out[name] = TableSpec(
            name=name,
            primary_key=pk,
            columns=columns,
            description=v.get(spec, sec, "description", "a string", ""),
            watermark=watermark,
            soft_delete=soft_delete,
            absent_columns=tuple(v.get(spec, sec, "absent_columns", "a list of strings", [])),
            on_type_mismatch=_type_mismatch(v, spec, sec),
        )
    return out


def _type_mismatch(v: _Validator, spec: Mapping[str, Any], sec: str) -> str | None:
    if "on_type_mismatch" not in spec:
        return None
    value = v.get(spec, sec, "on_type_mismatch", "a string")
    if value not in ("dead_letter", "widen"):
        raise v.fail(f"[{sec}] on_type_mismatch", f"= {value!r} — expected \"dead_letter\" (a value that does not fit its "
                     "declared type becomes a dead letter) or \"widen\" (the column widens until it fits)")
    return value


def _columns(v: _Validator, raw: Any, sec: str) -> tuple[ColumnSpec, ...]:
    csec = f"{sec}.columns"
    if not isinstance(raw, dict):
        raise v.fail(f"[{csec}]", "must be a table of column = \"description\" lines")
    cols = []
    for name, value in raw.items():
        if not _IDENT.match(name):
            raise v.fail(f"[{csec}] {name}", "— a column name must be letters, digits and '_'")
        if isinstance(value, str):
            cols.append(ColumnSpec(name=name, description=value))
        elif isinstance(value, dict):
            v.unknown_keys(value, {"description", "hash"}, f"{csec}.{name}")
            cols.append(
                ColumnSpec(
                    name=name,
                    description=v.get(value, f"{csec}.{name}", "description", "a string", ""),
                    hash=v.get(value, f"{csec}.{name}", "hash", "true or false", False),
                )
            )
        else:
            raise v.fail(
                f"[{csec}] {name}",
                f"= {value!r} — expected \"description\" or {{ description = \"…\", hash = true }}",
            )
    return tuple(cols)
