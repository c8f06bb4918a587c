"""A question is data: what to compute, split how, over what, compared with what.

`Question` is frozen and holds only ids and texts, so it can be cached,
compared, saved and — above all — carried in a URL: `to_params()` and
`Question.from_params(params, model)` are each other's inverse, and a link
reproduces every number on the page. Ids are checked against the model when
a question is read from a URL; what the model does not have is dropped with
a message rather than failing the page.

URL keys (all optional except base):

    base=payments                 the table rows are counted from
    m=payments.amount             measures (repeatable)
    d=merchants.category          dimensions (repeatable; any reachable table)
    f=merchants.region~in~서울~부산  filters: dimension~op~value~value… ('~' in a value is %7E, '%' is %25)
    mf=payments.payments~ge~50    measure filters (per group, before top N)
    time=payments.created_at      the time column of period, grain and compare
    period=last_30_days           a dashboard/dates.py token
    grain=day                     time series: hour | day | week | month | quarter | year
    cmp=previous                  none | previous | year
    sort=payments.amount  desc=0  sort by a measure or dimension (descending unless desc=0)
    top=20                        top N groups, the rest as one "others" row
    view=summary                  summary | rows | pivot
    pr=… pc=…                     pivot row / column dimensions (repeatable)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from dashboard.dates import parse_period, today_seoul
from dashboard.i18n import t
from dashboard.questions.filters import MEASURE_OPS, OPS

GRAINS = ("hour", "day", "week", "month", "quarter", "year")
COMPARES = ("none", "previous", "year")
VIEWS = ("summary", "rows", "pivot")
MAX_TOP = 1000
SEP = "~"


@dataclass(frozen=True)
class Filter:
    dimension: str
    op: str
    values: tuple[str, ...] = ()

    def token(self) -> str:
        return SEP.join([self.dimension, self.op, *(_escape(v) for v in self.values)])

    @classmethod
    def parse(cls, token: str) -> "Filter | None":
        parts = token.split(SEP)
        if len(parts) < 2:
            return None
        return cls(parts[0], parts[1], tuple(_unescape(v) for v in parts[2:]))


@dataclass(frozen=True)
class MeasureFilter:
    measure: str
    op: str
    value: float

    def token(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return SEP.join([self.measure, self.op, str(value)])


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace(SEP, "%7E")


def _unescape(value: str) -> str:
    return value.replace("%7E", SEP).replace("%7e", SEP).replace("%25", "%")


@dataclass(frozen=True)
class Question:
    base: str
    measures: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    measure_filters: tuple[MeasureFilter, ...] = ()
    time: str | None = None
    period: str | None = None
    grain: str | None = None
    compare: str = "none"
    sort: str | None = None
    descending: bool = True
    top: int | None = None
    view: str = "summary"
    pivot_rows: tuple[str, ...] = ()
    pivot_columns: tuple[str, ...] = ()

    def with_filter(self, f: Filter) -> "Question":
        """A drill-down: this question with one more filter (replacing one on the same dimension and op)."""
        kept = tuple(x for x in self.filters if (x.dimension, x.op) != (f.dimension, f.op))
        return replace(self, filters=kept + (f,))

    def without_filter(self, index: int) -> "Question":
        return replace(self, filters=self.filters[:index] + self.filters[index + 1:])

    def to_params(self) -> dict[str, str | list[str]]:
        """The URL query arguments of this question; defaults are left out so links stay short."""
        params: dict[str, str | list[str]] = {"base": self.base}
        lists = {"m": list(self.measures), "d": list(self.dimensions), "f": [f.token() for f in self.filters],
                 "mf": [f.token() for f in self.measure_filters], "pr": list(self.pivot_rows),
                 "pc": list(self.pivot_columns)}
        params.update({k: v for k, v in lists.items() if v})
        singles = {"time": self.time, "period": self.period, "grain": self.grain,
                   "cmp": None if self.compare == "none" else self.compare, "sort": self.sort,
                   "desc": None if self.descending else "0", "top": str(self.top) if self.top else None,
                   "view": None if self.view == "summary" else self.view}
        params.update({k: v for k, v in singles.items() if v is not None})
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str | Sequence[str]], model) -> tuple["Question", list[str]]:
        """A question from URL arguments, and a message per part that was dropped (unknown id, bad value)."""
        problems: list[str] = []

        def many(key: str) -> list[str]:
            value = params.get(key)
            if value is None:
                return []
            return [value] if isinstance(value, str) else [str(v) for v in value]

        def one(key: str) -> str | None:
            values = many(key)
            return values[-1] if values else None

        base = one("base")
        if not base or base not in model.tables:
            problems.append(t("q_unknown_table", table=base[:60], tables=", ".join(sorted(model.tables)))
                            if base else t("q_no_table"))
            base = next(iter(sorted(model.tables)), "")
        measures = _known(many("m"), model.has_measure, "q_unknown_measure", problems)
        dimensions = [d for d in _known(many("d"), model.has_dimension, "q_unknown_dimension", problems)
                      if _reachable(model, base, d, problems)]
        filters = []
        for token in many("f"):
            f = Filter.parse(token)
            if f is None or f.op not in OPS:
                problems.append(t("q_bad_filter", token=token[:60]))
            elif not model.has_dimension(f.dimension):
                problems.append(t("q_unknown_dimension", id=f.dimension[:60]))
            elif _reachable(model, base, f.dimension, problems):
                error = OPS[f.op].check_count(f.values)
                if error:
                    problems.append(t("q_bad_filter_values", id=f.dimension, op=f.op, problem=error))
                else:
                    filters.append(f)
        measure_filters = []
        for token in many("mf"):
            parts = token.split(SEP)
            try:
                mf = MeasureFilter(parts[0], parts[1], float(parts[2]))
            except (IndexError, ValueError):
                problems.append(t("q_bad_measure_filter", token=token[:60]))
                continue
            if mf.op not in MEASURE_OPS or not model.has_measure(mf.measure):
                problems.append(t("q_bad_measure_filter", token=token[:60]))
            else:
                measure_filters.append(mf)
        time = one("time")
        if time is not None and not (model.has_dimension(time) and model.dimension(time).kind == "time"
                                     and _reachable(model, base, time, problems)):
            problems.append(t("q_bad_time", id=time[:60]))
            time = None
        period = one("period")
        if period is not None:
            try:
                parse_period(period, today_seoul())
            except ValueError:
                problems.append(t("q_bad_period", value=period[:60]))
                period = None
        grain = one("grain")
        if grain is not None and grain not in GRAINS:
            problems.append(t("q_bad_choice", value=grain[:20], what="grain"))
            grain = None
        compare = one("cmp") or "none"
        if compare not in COMPARES:
            problems.append(t("q_bad_choice", value=compare[:20], what="cmp"))
            compare = "none"
        sort = one("sort")
        if sort is not None and not (sort in measures or sort in dimensions):
            problems.append(t("q_bad_sort", id=sort[:60]))
            sort = None
        top = None
        if one("top"):
            try:
                top = int(one("top"))
                if not 1 <= top <= MAX_TOP:
                    raise ValueError
            except ValueError:
                problems.append(t("q_bad_top", value=one("top")[:20], max=MAX_TOP))
                top = None
        view = one("view") or "summary"
        if view not in VIEWS:
            problems.append(t("q_bad_choice", value=view[:20], what="view"))
            view = "summary"
        pivot_rows = [d for d in _known(many("pr"), model.has_dimension, "q_unknown_dimension", problems)
                      if _reachable(model, base, d, problems)]
        pivot_columns = [d for d in _known(many("pc"), model.has_dimension, "q_unknown_dimension", problems)
                         if _reachable(model, base, d, problems)]
        question = cls(base=base, measures=tuple(measures), dimensions=tuple(dimensions), filters=tuple(filters),
                       measure_filters=tuple(measure_filters), time=time, period=period, grain=grain,
                       compare=compare, sort=sort, descending=one("desc") != "0", top=top, view=view,
                       pivot_rows=tuple(pivot_rows), pivot_columns=tuple(pivot_columns))
        return question, problems


def default_question(model, base: str) -> Question:
    """What a table shows before anyone picks anything: its first measure over the last 30 days, by day."""
    table = model.table(base)
    measure = next(iter(table.measures.values()), None)
    time = f"{base}.{table.time}" if table.time and table.time in table.dimensions else None
    return Question(base=base, measures=(measure.id,) if measure else (), time=time,
                    period="last_30_days" if table.time else None, grain="day" if table.time else None)


def _known(ids: list[str], exists, message: str, problems: list[str]) -> list[str]:
    out = []
    for item in ids:
        if not exists(item):
            problems.append(t(message, id=item[:60]))
        elif item not in out:
            out.append(item)
    return out


def _reachable(model, base: str, dimension_id: str, problems: list[str]) -> bool:
    from dashboard.model import ModelError

    try:
        model.path(base, dimension_id.partition(".")[0])
        return True
    except ModelError as exc:
        problems.append(t("q_unreachable", id=dimension_id, base=base, reason=str(exc)))
        return False
