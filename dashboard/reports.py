"""Curated reports as files: parse the header of a `sql/*.sql` file. Pure functions.

A recurring data request becomes one file. The leading `--` comment lines
declare what the app needs to render it:

    -- title: 일별 충전 금액 / Daily top-ups
    -- description: Top-up totals per day and channel.
    -- param: start date default=-30d label="시작일 / Start date"
    -- param: end date default=today
    -- param: period daterange default=last_30_days
    -- param: channel choice from=SELECT DISTINCT channel FROM topups
    -- param: grain choice options=day,week,month default=week
    -- param: min_balance number default=10000 min=0 step=1000
    -- param: name_contains text
    -- chart: line x=day y=amount_krw color=channel
    -- totals: topups, amount_krw
    SELECT ... WHERE created_at >= $start ...

Parameter kinds and how they reach the SQL (always as bound DuckDB `$name`
parameters, never pasted into the text):

- `date`: a `datetime.date`; defaults `today`, `yesterday`, `-30d`, `-8w`,
  `-12m`, `month_start`, `prev_month_start`, `year_start` or `YYYY-MM-DD`.
- `daterange`: two dates bound as `$<name>_start` and `$<name>_end`
  (both inclusive days), picked with the app's one period control
  (dashboard/dates.py); default a preset (`last_30_days`, `last_month`,
  `this_year`, …) or `<date>..<date>`.
- `number`: an int (or float when a default/min/step has a decimal point).
- `text`: a string; empty binds NULL, so `($x IS NULL OR col ILIKE ...)` means
  "no filter".
- `choice`: one value from `options=a,b,c` or from a one-column query
  `from=SELECT ...` (must be last on the line); "all" binds NULL unless the
  param has `required=true`.

Charts (`-- chart: <kind> role=column ...`, columns of the result): line, bar,
stacked_bar, area (x, y, optional color), heatmap (x, y, z), pie (x = slice
names, y = sizes). The chart is a question of the report's result, compiled
by the query compiler (dashboard/questions/relation.py) and drawn by
dashboard/charts.py.

`totals:` names result columns whose sums the page shows above the table
(with the row count): a total is a summary, never a column repeated on
every row.

Every `$name` in the SQL must be declared and every declared parameter used;
a problem raises `ReportError` naming the file, the line and what to fix.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dashboard.dates import PRESETS, is_preset

PARAM_KINDS = ("date", "daterange", "number", "text", "choice")
CHART_KINDS = {
    # kind → (required keys, optional keys)
    "line": (("x", "y"), ("color",)),
    "bar": (("x", "y"), ("color",)),
    "stacked_bar": (("x", "y"), ("color",)),
    "area": (("x", "y"), ("color",)),
    "heatmap": (("x", "y", "z"), ()),
    "pie": (("x", "y"), ()),  # x = slice names, y = slice sizes
}
HEADER_KEYS = ("title", "description", "param", "chart", "totals")
# URL query keys the app itself uses; a parameter may not shadow them.
RESERVED_PARAM_NAMES = frozenset({"report", "lang", "page", "q", "search", "embed", "sort", "desc"})

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_HEADER_LINE = re.compile(r"^--\s*([A-Za-z_][A-Za-z0-9_ ]*?)\s*:\s?(.*)$")
_OPTION = re.compile(r'\s*([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)')
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*|\d+)")
_RELATIVE = re.compile(r"^([+-]\d+)([dwmy])$")
DATE_KEYWORDS = ("today", "yesterday", "month_start", "prev_month_start", "year_start")


class ReportError(Exception):
    """A problem in one report file: where it is and what to do about it."""

    def __init__(self, file: str, line: int | None, problem: str):
        self.file = file
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # one of PARAM_KINDS
    default: str | None = None  # as written in the header (resolved by the runner)
    label_ko: str | None = None
    label_en: str | None = None
    options: tuple[str, ...] = ()  # choice: fixed options
    options_sql: str | None = None  # choice: one-column query for the options
    required: bool = False  # choice: no "all" entry
    minimum: float | None = None  # number
    maximum: float | None = None
    step: float | None = None
    is_float: bool = False
    line: int = 0

    @property
    def sql_names(self) -> tuple[str, ...]:
        """The `$names` this parameter binds in the SQL."""
        if self.kind == "daterange":
            return (f"{self.name}_start", f"{self.name}_end")
        return (self.name,)


@dataclass(frozen=True)
class Chart:
    kind: str
    x: str | None = None
    y: str | None = None
    color: str | None = None
    z: str | None = None
    line: int = 0

    def columns(self) -> dict[str, str]:
        """role → result column, for the roles this chart uses."""
        roles = ("x", "y", "color", "z")
        return {r: getattr(self, r) for r in roles if getattr(self, r)}


@dataclass(frozen=True)
class Report:
    slug: str  # file stem; the report's id in URLs
    path: str
    title_ko: str
    title_en: str
    description: str
    params: tuple[Param, ...]
    chart: Chart | None
    sql: str
    sql_line: int  # file line where the SQL body starts (for error positions)
    sql_names: tuple[str, ...] = field(default=())  # $names used, in order of first use
    totals: tuple[str, ...] = field(default=())  # result columns summed above the table

    def title(self, lang: str = "ko") -> str:
        return self.title_en if lang == "en" else self.title_ko

    def matches(self, search: str) -> bool:
        """Case-insensitive substring search over both titles and the description."""
        s = search.strip().lower()
        if not s:
            return True
        hay = " ".join((self.title_ko, self.title_en, self.description, self.slug)).lower()
        return all(word in hay for word in s.split())

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


@dataclass(frozen=True)
class BrokenReport:
    """A file in sql/ that could not be parsed; shown on the page, never hides the others."""

    slug: str
    path: str
    error: ReportError


# ──────────────────────────────────────────────────────────────── parsing ──


def parse_report(text: str, path: str | Path) -> Report:
    """Parse one report file's text. Raises ReportError(file, line, problem)."""
    path = Path(path)
    file = path.name
    lines = text.splitlines()
    title: tuple[str, str] | None = None
    description: list[str] = []
    params: list[Param] = []
    chart: Chart | None = None
    totals: tuple[str, ...] | None = None
    body_start = len(lines)
    for i, raw in enumerate(lines):
        lineno = i + 1
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            body_start = i
            break
        m = _HEADER_LINE.match(line)
        if not m:
            continue  # a free comment in the header
        key, value = m.group(1).strip().lower(), m.group(2).strip()
        if key not in HEADER_KEYS:
            if " " in key:  # prose that happens to contain a colon
                continue
            hint = difflib.get_close_matches(key, HEADER_KEYS, n=1)
            tip = f" — did you mean '{hint[0]}:'?" if hint else f" — known keys: {', '.join(HEADER_KEYS)}"
            raise ReportError(file, lineno, f"unknown header key '{key}:'{tip}")
        if key == "title":
            if title is not None:
                raise ReportError(file, lineno, "a second 'title:' line — keep one")
            title = _parse_title(file, lineno, value)
        elif key == "description":
            description.append(value)
        elif key == "param":
            p = _parse_param(file, lineno, value)
            if any(q.name == p.name for q in params):
                raise ReportError(file, lineno, f"parameter '{p.name}' is declared twice")
            params.append(p)
        elif key == "chart":
            if chart is not None:
                raise ReportError(file, lineno, "a second 'chart:' line — one chart per report")
            chart = _parse_chart(file, lineno, value)
        elif key == "totals":
            if totals is not None:
                raise ReportError(file, lineno, "a second 'totals:' line — list every column on one line")
            totals = _parse_totals(file, lineno, value)
    if title is None:
        raise ReportError(file, 1, "no '-- title: 한국어 제목 / English title' line at the top")
    sql = "\n".join(lines[body_start:]).rstrip()
    if not sql.strip():
        raise ReportError(file, body_start + 1, "the header is not followed by a query — add the SELECT below it")
    used = _sql_names(file, lines, body_start)
    declared = {n: p for p in params for n in p.sql_names}
    for name, lineno in used.items():
        if name.isdigit():
            raise ReportError(file, lineno, f"positional parameter ${name} — use a named one declared with '-- param:'")
        if name not in declared:
            hint = difflib.get_close_matches(name, list(declared), n=1)
            tip = f" — did you mean ${hint[0]}?" if hint else f" — declare it: '-- param: {name} date default=today'"
            raise ReportError(file, lineno, f"${name} is used in the query but not declared{tip}")
    for p in params:
        missing = [n for n in p.sql_names if n not in used]
        if missing:
            raise ReportError(
                file, p.line, f"parameter '{p.name}' is declared but ${missing[0]} is never used in the query — use it or remove the line"
            )
    return Report(
        slug=path.stem,
        path=str(path),
        title_ko=title[0],
        title_en=title[1],
        description=" ".join(d for d in description if d),
        params=tuple(params),
        chart=chart,
        sql=sql,
        sql_line=body_start + 1,
        sql_names=tuple(used),
        totals=totals or (),
    )


def load_reports(folder: str | Path) -> list[Report | BrokenReport]:
    """Every `*.sql` file in `folder`, parsed, sorted by file name. Broken files are kept as BrokenReport."""
    folder = Path(folder)
    out: list[Report | BrokenReport] = []
    for path in sorted(folder.glob("*.sql")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.append(BrokenReport(path.stem, str(path), ReportError(path.name, None, f"cannot be read ({exc})")))
            continue
        try:
            out.append(parse_report(text, path))
        except ReportError as exc:
            out.append(BrokenReport(path.stem, str(path), exc))
    return out


def _parse_title(file: str, lineno: int, value: str) -> tuple[str, str]:
    ko, sep, en = value.partition(" / ")
    if not sep or not ko.strip() or not en.strip():
        raise ReportError(file, lineno, f"title {value!r} needs Korean and English separated by ' / ', e.g. '일별 충전 금액 / Daily top-ups'")
    return ko.strip(), en.strip()


def _parse_options(file: str, lineno: int, text: str, allowed: Iterable[str]) -> dict[str, str]:
    """key=value pairs; values may be "quoted"; `from=` takes the rest of the line."""
    allowed = tuple(allowed)
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        if text[pos:].lstrip().startswith("from="):
            start = text.index("from=", pos) + len("from=")
            out["from"] = text[start:].strip()
            break
        m = _OPTION.match(text, pos)
        if not m:
            bad = text[pos:].strip().split()[0]
            raise ReportError(file, lineno, f"cannot read {bad!r} — expected key=value (known keys: {', '.join(allowed)})")
        key, value = m.group(1), m.group(2)
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"')
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            tip = f" — did you mean {hint[0]}=?" if hint else f" — known keys here: {', '.join(allowed)}"
            raise ReportError(file, lineno, f"unknown option '{key}='{tip}")
        if key in out:
            raise ReportError(file, lineno, f"option '{key}=' given twice")
        out[key] = value
        pos = m.end()
    return out


_PARAM_OPTIONS = {
    "date": ("default", "label"),
    "daterange": ("default", "label"),
    "number": ("default", "label", "min", "max", "step"),
    "text": ("default", "label"),
    "choice": ("default", "label", "options", "from", "required"),
}


def _parse_param(file: str, lineno: int, value: str) -> Param:
    parts = value.split(None, 2)
    if len(parts) < 2:
        raise ReportError(file, lineno, f"'param: {value}' needs a name and a kind, e.g. 'param: start date default=-30d'")
    name, kind = parts[0], parts[1]
    rest = parts[2] if len(parts) > 2 else ""
    if not _NAME.match(name):
        raise ReportError(file, lineno, f"parameter name {name!r} must be lower-case letters, digits and '_'")
    if name in RESERVED_PARAM_NAMES:
        raise ReportError(file, lineno, f"parameter name {name!r} is reserved by the app's links — pick another")
    if kind not in PARAM_KINDS:
        hint = difflib.get_close_matches(kind, PARAM_KINDS, n=1)
        tip = f" — did you mean '{hint[0]}'?" if hint else ""
        raise ReportError(file, lineno, f"parameter '{name}' has unknown kind {kind!r}{tip} (kinds: {', '.join(PARAM_KINDS)})")
    opts = _parse_options(file, lineno, rest, _PARAM_OPTIONS[kind])
    label_ko = label_en = None
    if "label" in opts:
        ko, sep, en = opts["label"].partition(" / ")
        label_ko, label_en = ko.strip(), (en.strip() if sep else ko.strip())
    default = opts.get("default")
    kw: dict[str, Any] = {}
    if kind == "date" and default is not None:
        _check_date_expr(file, lineno, name, default)
    elif kind == "daterange":
        default = default or "last_30_days"
        if not is_preset(default):
            a, sep, b = default.partition("..")
            if not sep:
                raise ReportError(file, lineno, f"daterange '{name}' default {default!r} — expected a preset "
                                                f"({', '.join(PRESETS)}, last_N_days) or <from>..<to>, e.g. -30d..today")
            _check_date_expr(file, lineno, name, a)
            _check_date_expr(file, lineno, name, b)
    elif kind == "number":
        numbers = {}
        for key in ("default", "min", "max", "step"):
            if key in opts:
                try:
                    numbers[key] = float(opts[key])
                except ValueError:
                    raise ReportError(file, lineno, f"number '{name}' {key}={opts[key]!r} is not a number") from None
        kw["is_float"] = any("." in opts[k] or "e" in opts[k].lower() for k in numbers)
        kw["minimum"], kw["maximum"], kw["step"] = numbers.get("min"), numbers.get("max"), numbers.get("step")
        if kw["minimum"] is not None and kw["maximum"] is not None and kw["minimum"] > kw["maximum"]:
            raise ReportError(file, lineno, f"number '{name}' has min > max")
        d = numbers.get("default")
        if d is not None and ((kw["minimum"] is not None and d < kw["minimum"]) or (kw["maximum"] is not None and d > kw["maximum"])):
            raise ReportError(file, lineno, f"number '{name}' default {opts['default']} is outside min/max")
        if default is None:
            default = opts.get("min", "0")
    elif kind == "choice":
        if ("options" in opts) == ("from" in opts):
            raise ReportError(
                file, lineno, f"choice '{name}' needs exactly one of options=a,b,c or from=SELECT ... (one column, last on the line)"
            )
        if "options" in opts:
            kw["options"] = tuple(o.strip() for o in opts["options"].split(",") if o.strip())
            if not kw["options"]:
                raise ReportError(file, lineno, f"choice '{name}' options= is empty")
            if default is not None and default not in kw["options"]:
                raise ReportError(file, lineno, f"choice '{name}' default {default!r} is not one of its options {', '.join(kw['options'])}")
        else:
            q = opts["from"]
            if not q.lower().startswith(("select", "with", "from")):
                raise ReportError(file, lineno, f"choice '{name}' from= must be a query (SELECT ...), got {q!r}")
            if "$" in q:
                raise ReportError(file, lineno, f"choice '{name}' from= query may not use parameters")
            kw["options_sql"] = q
        req = opts.get("required", "false").lower()
        if req not in ("true", "false"):
            raise ReportError(file, lineno, f"choice '{name}' required={req!r} — expected true or false")
        kw["required"] = req == "true"
        if kw["required"] and default is None and kw.get("options"):
            default = kw["options"][0]
    return Param(name=name, kind=kind, default=default, label_ko=label_ko, label_en=label_en, line=lineno, **kw)


def _parse_chart(file: str, lineno: int, value: str) -> Chart:
    parts = value.split(None, 1)
    if not parts:
        raise ReportError(file, lineno, "'chart:' needs a kind, e.g. 'chart: line x=day y=amount_krw'")
    kind = parts[0]
    if kind not in CHART_KINDS:
        hint = difflib.get_close_matches(kind, list(CHART_KINDS), n=1)
        tip = f" — did you mean '{hint[0]}'?" if hint else ""
        raise ReportError(file, lineno, f"chart kind {kind!r} is unknown{tip} (kinds: {', '.join(CHART_KINDS)})")
    required, optional = CHART_KINDS[kind]
    opts = _parse_options(file, lineno, parts[1] if len(parts) > 1 else "", required + optional)
    for key in required:
        if not opts.get(key):
            raise ReportError(file, lineno, f"chart {kind} needs {key}=<column>")
    for key, col in opts.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", col):
            raise ReportError(file, lineno, f"chart {key}={col!r} must be a result column name")
    return Chart(kind=kind, line=lineno, **opts)


def _parse_totals(file: str, lineno: int, value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise ReportError(file, lineno, "'totals:' needs result columns to sum, e.g. 'totals: topups, amount_krw'")
    for n in names:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n):
            raise ReportError(file, lineno, f"totals {n!r} must be a result column name")
    return names


def param_tokens(sql: str) -> list[tuple[str, int, int, int]]:
    """Every `$name` in `sql` outside comments and string literals: (name, start, end, line index from 0)."""
    found: list[tuple[str, int, int, int]] = []
    in_string = in_block = in_line_comment = False
    line = 0
    j = 0
    while j < len(sql):
        c = sql[j]
        if c == "\n":
            line += 1
            in_line_comment = False
            j += 1
            continue
        if in_line_comment:
            j += 1
        elif in_block:
            if sql.startswith("*/", j):
                in_block = False
                j += 2
            else:
                j += 1
        elif in_string:
            in_string = c != "'"
            j += 1
        elif c == "'":
            in_string = True
            j += 1
        elif sql.startswith("--", j):
            in_line_comment = True
            j += 2
        elif sql.startswith("/*", j):
            in_block = True
            j += 2
        elif c == "$" and (m := _DOLLAR.match(sql, j)):
            found.append((m.group(1), m.start(), m.end(), line))
            j = m.end()
        else:
            j += 1
    return found


def _sql_names(file: str, lines: list[str], body_start: int) -> dict[str, int]:
    """$names in the SQL body → file line (1-based) of their first use."""
    found: dict[str, int] = {}
    for name, _, _, line in param_tokens("\n".join(lines[body_start:])):
        found.setdefault(name, body_start + line + 1)
    return found


def positional_sql(report: "Report", offset: int = 0) -> str:
    """The report's SQL with each `$name` replaced by `$<n>`, n = offset + 1 + its index in `report.sql_names`.

    For readers that bind a list (DuckDB `$1`); values still travel as bound
    parameters — only the placeholder spelling changes. `offset` numbers them
    after a surrounding statement's own (a report inside a compiled chart).
    """
    index = {name: offset + i + 1 for i, name in enumerate(report.sql_names)}
    out, pos = [], 0
    for name, start, end, _ in param_tokens(report.sql):
        out.append(report.sql[pos:start])
        out.append(f"${index[name]}")
        pos = end
    out.append(report.sql[pos:])
    return "".join(out)


# ─────────────────────────────────────────────────────────────── dates ──


def _check_date_expr(file: str, lineno: int, name: str, expr: str) -> None:
    try:
        resolve_date(expr, dt.date(2000, 1, 31))
    except ValueError as exc:
        raise ReportError(file, lineno, f"parameter '{name}': {exc}") from None


def resolve_date(expr: str, today: dt.date) -> dt.date:
    """A date default relative to `today` (the app passes today's date in Asia/Seoul)."""
    e = expr.strip().lower()
    if e == "today":
        return today
    if e == "yesterday":
        return today - dt.timedelta(days=1)
    if e == "month_start":
        return today.replace(day=1)
    if e == "prev_month_start":
        return _add_months(today.replace(day=1), -1)
    if e == "year_start":
        return today.replace(month=1, day=1)
    m = _RELATIVE.match(e)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit == "d":
            return today + dt.timedelta(days=n)
        if unit == "w":
            return today + dt.timedelta(weeks=n)
        if unit == "m":
            return _add_months(today, n)
        return _add_months(today, 12 * n)
    try:
        return dt.date.fromisoformat(expr.strip())
    except ValueError:
        raise ValueError(
            f"date {expr!r} is not understood — use today, yesterday, month_start, prev_month_start, "
            "year_start, -30d, -8w, -12m, -1y or YYYY-MM-DD"
        ) from None


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(d.day, last))
