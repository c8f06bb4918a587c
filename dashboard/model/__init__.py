"""The data model: which tables relate how, what can be counted and how it can be split.

`load_model(config, catalog)` reads `models/*.toml` (docs/model.md), fills in
every warehouse table without a file from the catalog
(dashboard/model/derive.py), checks relationships for cycles and ambiguous
paths (dashboard/model/graph.py) and formulas with DuckDB's parser
(dashboard/model/formulas.py). It never raises for a mistake in a model
file: the broken part is left out and `Model.problems` says what to fix.
The query compiler (dashboard/questions/) only ever uses identifiers that
got into a Model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dashboard.model import derive, files, graph
from dashboard.model.types import Dimension, Label, Measure, Problem, Relationship, TableModel
from dashboard.warehouse import Catalog

__all__ = ["Dimension", "Label", "Measure", "Model", "ModelError", "Problem", "Relationship", "TableModel",
           "full_model", "load_model", "model_for", "models_dir", "relink"]

PROJECT_MODELS = Path(__file__).resolve().parent.parent.parent / "models"
MAX_FORMULA_DEPTH = 5


class ModelError(LookupError):
    """An id or path the model does not have; the message says what to pick instead."""


@dataclass
class Model:
    tables: dict[str, TableModel]
    problems: list[Problem] = field(default_factory=list)
    _paths: dict[str, dict[str, tuple[Relationship, ...]]] = field(default_factory=dict, repr=False)
    _ambiguous: dict[str, dict[str, list]] = field(default_factory=dict, repr=False)

    # Lookups ----------------------------------------------------------------------

    def table(self, name: str) -> TableModel:
        model = self.tables.get(name)
        if model is None:
            raise ModelError(f"table '{name}' is not in the model — pick one of: {', '.join(sorted(self.tables))}")
        return model

    def measure(self, measure_id: str) -> Measure:
        table, _, name = measure_id.partition(".")
        model = self.tables.get(table)
        if model is None or name not in model.measures:
            raise ModelError(f"measure '{measure_id}' is not in the model — pick one from the list")
        return model.measures[name]

    def dimension(self, dimension_id: str) -> Dimension:
        table, _, name = dimension_id.partition(".")
        model = self.tables.get(table)
        if model is None or name not in model.dimensions:
            raise ModelError(f"dimension '{dimension_id}' is not in the model — pick one from the list")
        return model.dimensions[name]

    def has_measure(self, measure_id: str) -> bool:
        try:
            self.measure(measure_id)
            return True
        except ModelError:
            return False

    def has_dimension(self, dimension_id: str) -> bool:
        try:
            self.dimension(dimension_id)
            return True
        except ModelError:
            return False

    # Paths --------------------------------------------------------------------------

    def path(self, start: str, goal: str) -> tuple[Relationship, ...]:
        """The joins from `start` to `goal` (empty for the same table); raises ModelError naming why not."""
        if start == goal:
            return ()
        found = self._paths.get(start, {}).get(goal)
        if found is not None:
            return found
        competing = self._ambiguous.get(start, {}).get(goal)
        if competing:
            raise ModelError(f"{start} reaches {goal} in two ways ({graph.describe_path(competing[0])}; "
                             f"{graph.describe_path(competing[1])}) — the model must keep only one")
        back = self._paths.get(goal, {}).get(start)
        if back is not None:
            raise ModelError(f"fan-out: {start} ← {goal} ({graph.describe_path(back)} read backwards): one {start} "
                             f"row has many {goal} rows, so its measures would be multiplied — start the question "
                             f"from {goal} instead")
        raise ModelError(f"{goal} cannot be reached from {start} through the model's relationships — "
                         f"pick a dimension of {start} or of a table it points to")

    def reaches(self, start: str, goal: str) -> bool:
        return start == goal or goal in self._paths.get(start, {})

    def reachable_tables(self, start: str) -> list[str]:
        """`start` and every table its relationships lead to, nearest first."""
        paths = self._paths.get(start, {})
        return [start] + sorted(paths, key=lambda t: (len(paths[t]), t))

    def dimensions_from(self, start: str) -> list[Dimension]:
        """Every dimension a question on `start` may split or filter by (its own first)."""
        return [d for t in self.reachable_tables(start) for d in self.tables[t].dimensions.values()]

    def measures_from(self, start: str) -> list[Measure]:
        """The measures declared on `start` (formulas there may use other tables' measures)."""
        return list(self.tables[start].measures.values())

    def related_event_tables(self, table: str) -> list[Relationship]:
        """Relationships pointing straight at `table` (e.g. payments.card → cards): its events, for lookups."""
        return [rel for t in self.tables.values() for rel in t.relationships.values() if rel.to_table == table]

    # Measures --------------------------------------------------------------------

    def atomic_measures(self, measure_id: str, _depth: int = 0) -> list[Measure]:
        """The table-level measures a measure is computed from (itself, when it is not a formula)."""
        measure = self.measure(measure_id)
        if not measure.is_formula:
            return [measure]
        if _depth > MAX_FORMULA_DEPTH:
            raise ModelError(f"measure '{measure_id}' refers to itself through its formula — break the loop")
        out: list[Measure] = []
        for ref in measure.refs:
            for atom in self.atomic_measures(ref, _depth + 1):
                if atom not in out:
                    out.append(atom)
        return out


def models_dir(config) -> Path:
    """`models/` next to the configuration file, else the project's own `models/` folder."""
    local = Path(config.path).resolve().parent / "models"
    return local if local.is_dir() else PROJECT_MODELS


def load_model(config, catalog: Catalog, directory: Path | None = None) -> Model:
    """The model of every table in `catalog`; problems collected, never raised."""
    if catalog.empty:  # no data yet: pages say so; model files are checked once tables exist
        return Model(tables={})
    directory = directory or models_dir(config)
    primary_keys = {name: tuple(spec.primary_key) for name, spec in config.tables.items()}
    descriptions = {name: {c.name: c.description for c in spec.columns} for name, spec in config.tables.items()}
    table_labels = {name: spec.description for name, spec in config.tables.items()}
    problems: list[Problem] = []
    tables: dict[str, TableModel] = {}
    for path in sorted(directory.glob("*.toml")) if directory.is_dir() else ():
        model = files.read_model_file(path, catalog, primary_keys, descriptions, table_labels, problems)
        if model is None:
            continue
        if model.name in tables:
            problems.append(Problem(path.name, "table", f"{model.name} is already modelled in "
                                                        f"{tables[model.name].source} — keep one file per table"))
            continue
        tables[model.name] = model
    for name, info in catalog.tables.items():
        if name not in tables:
            tables[name] = derive.catalog_model(info, table_labels.get(name, ""), descriptions.get(name, {}),
                                                primary_keys.get(name, ()))
    model = Model(tables=tables, problems=problems)
    relink(model)
    return model


def relink(model: Model) -> None:
    """Paths and formula checks for a model's tables (after loading, or after access rules removed parts)."""
    model._paths.clear()
    model._ambiguous.clear()
    _link(model)
    _check_formulas(model)


def _link(model: Model) -> None:
    """Drop relationships that close cycles, then compute every table's shortest paths."""
    rels = [r for t in model.tables.values() for r in t.relationships.values()]
    for rel in graph.cycle_edges(rels):
        source = model.tables[rel.table].source
        model.problems.append(Problem(source, f"relationships.{rel.name}",
                                      f"{rel.describe()} closes a cycle of relationships — remove it or one "
                                      f"relationship on the way back from {rel.to_table} to {rel.table}"))
        _drop(model, rel.table, "relationships", rel.name)
    edges: dict[str, list] = {}
    for t in model.tables.values():
        edges[t.name] = list(t.relationships.values())
    for name in model.tables:
        unique, ambiguous = graph.shortest_paths(edges, name)
        model._paths[name] = unique
        model._ambiguous[name] = ambiguous
        for goal, competing in ambiguous.items():
            model.problems.append(Problem(model.tables[name].source, "relationships",
                                          f"{name} reaches {goal} in two equally short ways "
                                          f"({graph.describe_path(competing[0])}; {graph.describe_path(competing[1])})"
                                          f" — remove one relationship; {goal} is not reachable from {name} until then"))


def _check_formulas(model: Model) -> None:
    """Formula references must name measures that exist (after the other files were read)."""
    for table in list(model.tables.values()):
        for measure in list(table.measures.values()):
            if not measure.is_formula:
                continue
            try:
                model.atomic_measures(measure.id)
            except ModelError as exc:
                model.problems.append(Problem(table.source, f"measures.{measure.name}",
                                              f"{exc} (in its formula) — fix the reference"))
                _drop(model, table.name, "measures", measure.name)


def _drop(model: Model, table: str, section: str, name: str) -> None:
    from dataclasses import replace

    current = model.tables[table]
    kept = {k: v for k, v in getattr(current, section).items() if k != name}
    model.tables[table] = replace(current, **{section: kept})


_CACHE: dict[tuple, Model] = {}


def model_for(warehouse) -> Model:
    """The model as the current person's role may see it (dashboard/access/policy.py), for pages."""
    from dashboard.access.enforce import policy_now
    from dashboard.access.policy import restrict

    full = full_model(warehouse)
    policy = policy_now(warehouse.config)
    if policy.everything:
        return full
    key = (id(full), policy.key)
    model = _RESTRICTED.get(key)
    if model is None:
        model = restrict(full, policy)
        if len(_RESTRICTED) > 64:
            _RESTRICTED.clear()
        _RESTRICTED[key] = model
    return model


_RESTRICTED: dict[tuple, Model] = {}


def full_model(warehouse) -> Model:
    """The model of the whole warehouse; read again when the tables' shape or a model file changes.

    Keyed by the catalog's tables and columns, not its row counts: a new
    batch of rows keeps the model, a new topic or column gets a new one on
    the next run. The files' stamps cover a developer editing
    `models/*.toml` while the app runs.
    """
    directory = models_dir(warehouse.config)
    stamps = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.toml"))) if directory.is_dir() else ()
    catalog = warehouse.raw_catalog()
    shape = tuple((name, info.schema, info.columns) for name, info in sorted(catalog.tables.items()))
    key = (str(warehouse.path), str(directory), shape, stamps)
    model = _CACHE.get(key)
    if model is None:
        model = load_model(warehouse.config, catalog, directory)
        _CACHE.clear()
        _CACHE[key] = model
    return model
