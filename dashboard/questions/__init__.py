"""Questions without SQL: a question is data (spec.py), one compiler turns it into bound SQL (compile.py).

Filter operations (filters.py) and period comparisons (periods.py) are small
registries; display.py says how results read; relation.py asks questions
of a curated report's result (its chart); pages only lay out widgets and
call these. docs/model.md describes the model files and the URL keys.
"""

from dashboard.questions.compile import (OTHERS_COLUMN, TIME_COLUMN, Column, Compiled, Lookup, QuestionError,
                                         compile_lookup, compile_lookup_search, compile_pivot, compile_rows,
                                         compile_summary)
from dashboard.questions.display import describe_filter, describe_measure_filter, format_value, others_label
from dashboard.questions.filters import MEASURE_OPS, OPS, op_label, ops_for
from dashboard.questions.periods import COMPARISONS
from dashboard.questions.spec import COMPARES, GRAINS, VIEWS, Filter, MeasureFilter, Question, default_question

__all__ = ["COMPARES", "COMPARISONS", "GRAINS", "MEASURE_OPS", "OPS", "OTHERS_COLUMN", "TIME_COLUMN", "VIEWS",
           "Column", "Compiled", "Filter", "Lookup", "MeasureFilter", "Question", "QuestionError",
           "compile_lookup", "compile_lookup_search", "compile_pivot", "compile_rows", "compile_summary",
           "default_question", "describe_filter", "describe_measure_filter", "format_value", "op_label",
           "ops_for", "others_label"]
