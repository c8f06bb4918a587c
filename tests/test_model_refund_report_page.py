"""The refund report on the Reports page: ranked by the chosen rate, top N, words in both languages."""

from __future__ import annotations

import pytest

from tests.test_pages_overview_reports_pipeline import built, env, run_page  # noqa: F401  (fixtures)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_refund_report_ranks_by_the_chosen_rate_and_shows_top_n(env, lang):
    at = run_page("pages/reports.py", {"report": "merchant_refund_cancel_rates", "top": "5",
                                       "period": "last_90_days", "rank_by": "cancel_rate"}, lang=lang)
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    table = next(f for f in frames if len(f.columns) > 5)
    assert 0 < len(table) <= 5
    rate = next(c for c in table.columns if "취소율" in c or "Cancellation rate" in c)
    values = [float(str(v).replace("%", "").replace(",", "")) for v in table[rate]]
    assert values == sorted(values, reverse=True)
    choice = next(s for s in at.selectbox if s.value == "cancel_rate")
    assert list(choice.options) == (["환불률", "취소율"] if lang == "ko" else ["Refund rate", "Cancellation rate"])
