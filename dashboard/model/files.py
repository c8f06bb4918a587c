"""Model files (`models/*.toml`): read, checked against the catalog, turned into TableModels.

One file per table. Whatever is wrong becomes a `Problem` (file, key, what
to do) and only that part is skipped: a typo in one measure leaves the rest
of the file, and every other file, working. docs/model.md describes the keys.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from dashboard.model import derive, formulas
from dashboard.model.types import (AGGREGATIONS, DERIVATIONS, FORMATS, Dimension, Label, Measure, Problem,
                                   Relationship, TableModel)
from dashboard.warehouse import Catalog, TableInfo, column_kind

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,60}$")
FILE_KEYS = {"table", "label", "time", "amount", "search", "hide", "relationships", "measures", "dimensions"}
_TIME_DERIVATIONS = {"weekday", "hour", "day", "week", "month", "month_of_year", "year"}


class _File:
    """Problems of one file are collected here, each with the key it is about."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.name = path.name
        self.problems = problems

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.name, key, message))


def read_model_file(path: Path, catalog: Catalog, primary_keys: Mapping[str, tuple[str, ...]],
                    descriptions: Mapping[str, Mapping[str, str]], table_labels: Mapping[str, str],
                    problems: list[Problem]) -> TableModel | None:
    """One model file → its TableModel (None when the whole file is unusable; problems say why)."""
    f = _File(path, problems)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        f.problem("-", f"cannot read the file ({exc}) — fix the TOML syntax; the table falls back to its catalog model")
        return None
    table = str(raw.get("table") or path.stem)
    info = catalog.table(table)
    if info is None:
        f.problem("table", f"table '{table}' is not in the warehouse — check the name (tables: "
                           f"{', '.join(sorted(catalog.tables)) or 'none yet'}) or wait for its first batch")
        return None
    for key in sorted(set(raw) - FILE_KEYS):
        f.problem(key, f"unknown key '{key}' — the keys are {', '.join(sorted(FILE_KEYS))}")
    desc = descriptions.get(table, {})
    base = derive.catalog_model(info, table_labels.get(table, ""), desc, primary_keys.get(table, ()))
    label = Label.parse(raw.get("label"), base.label.ko) if raw.get("label") else base.label

    def known_column(key: str, name: Any) -> str | None:
        if not isinstance(name, str) or info.column(name) is None:
            f.problem(key, f"column '{name}' is not in {table} — use one of: {', '.join(info.column_names)}")
            return None
        return name

    time = base.time
    if "time" in raw:
        time = known_column("time", raw["time"])
        if time and info.column(time).kind != "time":
            f.problem("time", f"'{time}' is not a date or time column — name one, e.g. created_at")
            time = None
        time = time or base.time
    amount = known_column("amount", raw["amount"]) if "amount" in raw else base.amount
    search = tuple(c for c in (raw.get("search") or ()) if known_column("search", c))
    hide = {c for c in (raw.get("hide") or ()) if known_column("hide", c)}

    relationships = {}
    for name, spec in _tables(f, raw, "relationships").items():
        rel = _relationship(f, info, name, spec, catalog, primary_keys)
        if rel:
            relationships[name] = rel

    dimensions = {c: d for c, d in base.dimensions.items() if c not in hide}
    for name, spec in _tables(f, raw, "dimensions").items():
        dim = _dimension(f, info, name, spec, desc)
        if dim:
            dimensions[name] = dim

    measures = {}
    for name, spec in _tables(f, raw, "measures").items():
        measure = _measure(f, info, name, spec)
        if measure:
            measures[name] = measure
    if not any(m.agg == "count" and m.column is None and m.where is None for m in measures.values()):
        measures["count"] = base.measures["count"]  # a table can always count its rows
    return TableModel(name=table, label=label, primary_key=base.primary_key, time=time, amount=amount,
                      search=search, relationships=relationships, measures=measures, dimensions=dimensions,
                      source=path.name, columns=base.columns)


def _tables(f: _File, raw: Mapping[str, Any], section: str) -> dict[str, Mapping[str, Any]]:
    value = raw.get(section) or {}
    if not isinstance(value, Mapping):
        f.problem(section, f"[{section}] must be a table of named entries, e.g. [{section}.name]")
        return {}
    out = {}
    for name, spec in value.items():
        if not isinstance(spec, Mapping):
            f.problem(f"{section}.{name}", "must be a table of keys, e.g. { column = \"...\" }")
        elif not _NAME.match(name):
            f.problem(f"{section}.{name}", "names are lower-case letters, digits and _ — rename it")
        else:
            out[name] = spec
    return out


def _relationship(f: _File, info: TableInfo, name: str, spec: Mapping[str, Any], catalog: Catalog,
                  primary_keys: Mapping[str, tuple[str, ...]]) -> Relationship | None:
    key = f"relationships.{name}"
    column, target = spec.get("column"), spec.get("to")
    if not isinstance(column, str) or info.column(column) is None:
        f.problem(key, f"column '{column}' is not in {info.name} — name the column holding the other table's key")
        return None
    target_info = catalog.table(target if isinstance(target, str) else None)
    if target_info is None:
        f.problem(key, f"'to' table '{target}' is not in the warehouse — name one of: {', '.join(sorted(catalog.tables))}")
        return None
    declared_key = primary_keys.get(target_info.name, ())
    to_column = spec.get("to_column") or (declared_key[0] if len(declared_key) == 1 else None)
    if not isinstance(to_column, str) or target_info.column(to_column) is None:
        f.problem(key, f"{target_info.name} has no single-column key to point at — add to_column = \"<its key column>\"")
        return None
    if declared_key and (to_column,) != tuple(declared_key):
        f.problem(key, f"fan-out: {info.name}.{column} → {target_info.name}.{to_column} is not many-to-one, "
                       f"{to_column} is not the key of {target_info.name} ({', '.join(declared_key)}), so one "
                       f"{info.name} row could meet many {target_info.name} rows and measures would be multiplied "
                       f"— point it at the key, or start questions from {target_info.name} instead")
        return None
    here, there = info.column(column), target_info.column(to_column)
    if here.kind != there.kind:
        f.problem(key, f"{info.name}.{column} ({here.type}) cannot match {target_info.name}.{to_column} ({there.type}) "
                       "— point it at a column of the same kind")
        return None
    return Relationship(name=name, table=info.name, column=column, to_table=target_info.name, to_column=to_column)


def _dimension(f: _File, info: TableInfo, name: str, spec: Mapping[str, Any],
               desc: Mapping[str, str]) -> Dimension | None:
    key = f"dimensions.{name}"
    column = spec.get("column", name)
    col = info.column(column) if isinstance(column, str) else None
    if col is None:
        f.problem(key, f"column '{column}' is not in {info.name} — use one of: {', '.join(info.column_names)}")
        return None
    derivation = spec.get("derive")
    if derivation is not None and derivation not in DERIVATIONS:
        f.problem(key, f"derive = '{derivation}' is unknown — use one of: {', '.join(DERIVATIONS)}")
        return None
    kind = col.kind
    bins: tuple[float, ...] = ()
    if derivation in _TIME_DERIVATIONS:
        if col.kind != "time":
            f.problem(key, f"derive = '{derivation}' needs a date or time column; '{column}' is {col.type}")
            return None
        kind = "time" if derivation in ("day", "week", "month") else "number"
    elif derivation == "bins":
        raw_bins = spec.get("bins")
        if col.kind != "number":
            f.problem(key, f"bins need a number column; '{column}' is {col.type}")
            return None
        if (not isinstance(raw_bins, list) or not raw_bins
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in raw_bins)
                or sorted(raw_bins) != raw_bins or len(set(raw_bins)) != len(raw_bins)):
            f.problem(key, "bins must be a list of increasing numbers, e.g. bins = [0, 5000, 10000, 30000]")
            return None
        bins = tuple(float(b) for b in raw_bins)
        kind = "number"
    values = _values(f, key, spec.get("values"), column if derivation is None else None)
    if derivation in ("weekday", "month_of_year", "hour") and not values:
        values = derive.derived_values(derivation)
    if derivation == "bins":
        values = _bin_labels(bins)
    label = Label.parse(spec.get("label"), name) if spec.get("label") else derive.column_label(info.name, column, desc)
    return Dimension(table=info.name, name=name, column=column, column_type=col.type, label=label, kind=kind,
                     derive=derivation, bins=bins, values=values)


def _bin_labels(bins: tuple[float, ...]) -> dict[str, Label]:
    """Codes are the lower bounds (the first bin is "below"): 0 → "0–4,999"."""
    def n(x: float) -> str:
        return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"

    labels = {"-inf": Label(f"{n(bins[0])} 미만", f"below {n(bins[0])}")}
    for lo, hi in zip(bins, bins[1:]):
        labels[_bin_code(lo)] = Label(f"{n(lo)} 이상 {n(hi)} 미만", f"{n(lo)} to under {n(hi)}")
    labels[_bin_code(bins[-1])] = Label(f"{n(bins[-1])} 이상", f"{n(bins[-1])} and over")
    return labels


def _bin_code(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _values(f: _File, key: str, raw: Any, column: str | None) -> dict[str, Label]:
    if raw is None:
        return (derive.vocabulary_values(column) or {}) if column else {}
    if isinstance(raw, str):
        words = derive.vocabulary_values(raw)
        if words is None:
            f.problem(key, f"values = '{raw}' names no vocabulary in dashboard/i18n.py — write the labels inline, "
                           "e.g. values = { approved = \"승인 / Approved\" }")
            return {}
        return words
    if isinstance(raw, Mapping):
        return {str(code): Label.parse(text, str(code)) for code, text in raw.items()}
    f.problem(key, "values must name a vocabulary (values = \"status\") or list codes (values = { a = \"가 / A\" })")
    return {}


def _measure(f: _File, info: TableInfo, name: str, spec: Mapping[str, Any]) -> Measure | None:
    key = f"measures.{name}"
    label = Label.parse(spec.get("label"), name)
    fmt = spec.get("format", "number")
    if fmt not in FORMATS:
        f.problem(key, f"format = '{fmt}' is unknown — use one of: {', '.join(FORMATS)}")
        fmt = "number"
    description = Label.parse(spec["description"], "") if spec.get("description") else None
    columns = [(c.name, c.type) for c in info.columns]
    kinds = [k for k in ("agg", "sql", "formula") if k in spec]
    if len(kinds) != 1:
        f.problem(key, "give exactly one of agg (with column), sql (an aggregate expression) or formula "
                       "(over {table.measure} references)")
        return None
    if "formula" in spec:
        formula = str(spec["formula"])
        refs = tuple(formulas.formula_refs(formula))
        error = formulas.parse_error(formulas.substitute(formula, lambda _ref: "1")) if refs else "references no measure"
        if error:
            f.problem(key, f"formula does not parse: {error} — write an expression over {{table.measure}} "
                           "references, e.g. 100.0 * {refunds.amount} / nullif({payments.amount}, 0)")
            return None
        return Measure(info.name, name, label, fmt, formula=formula, refs=refs, description=description)
    if "sql" in spec:
        sql = str(spec["sql"])
        error = formulas.parse_error(sql) or formulas.bind_error(sql, columns, aggregate=True)
        if error:
            f.problem(key, f"sql does not parse or bind: {error} — write one aggregate expression over "
                           f"{info.name}'s columns, e.g. sum(amount_krw)")
            return None
        return Measure(info.name, name, label, fmt, sql=sql, description=description)
    agg = spec["agg"]
    if agg not in AGGREGATIONS:
        f.problem(key, f"agg = '{agg}' is unknown — use one of: {', '.join(AGGREGATIONS)}")
        return None
    column = spec.get("column")
    if column is not None and (not isinstance(column, str) or info.column(column) is None):
        f.problem(key, f"column '{column}' is not in {info.name} — use one of: {', '.join(info.column_names)}")
        return None
    if column is None and agg != "count":
        f.problem(key, f"agg = '{agg}' needs a column — add column = \"<a column of {info.name}>\"")
        return None
    if agg in ("sum", "avg") and column_kind(info.column(column).type) != "number":
        f.problem(key, f"agg = '{agg}' needs a number column; '{column}' is {info.column(column).type}")
        return None
    where = spec.get("where")
    if where is not None:
        where = str(where)
        error = formulas.parse_error(where) or formulas.bind_error(where, columns, aggregate=False)
        if error:
            f.problem(key, f"where does not parse or bind: {error} — write a condition over {info.name}'s "
                           "columns, e.g. status = 'approved'")
            return None
    return Measure(info.name, name, label, fmt, agg=agg, column=column, where=where, description=description)
