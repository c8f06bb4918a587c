"""Questions without SQL: a question is data (spec.py), one compiler turns it into bound SQL (compile.py).

Filter operations (filters.py) and period comparisons (periods.py) are small
registries; pages only lay out widgets and call these.
"""

from dashboard.questions.compile import (Column, Compiled, Lookup, QuestionError, compile_lookup,
                                         compile_lookup_search, compile_pivot, compile_rows, compile_summary)
from dashboard.questions.spec import Filter, MeasureFilter, Question

__all__ = ["Column", "Compiled", "Filter", "Lookup", "MeasureFilter", "Question", "QuestionError",
           "compile_lookup", "compile_lookup_search", "compile_pivot", "compile_rows", "compile_summary"]
