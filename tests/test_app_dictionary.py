"""Dictionary page through AppTest: tables, columns, types, null shares, examples, absent PII columns."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def dictionary(lang: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if lang:
        at.session_state["lang"] = lang
    at.switch_page("pages/dictionary.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_frame(at: AppTest, table: str):
    for i, e in enumerate(at.expander):
        if e.label.startswith(table + " "):
            return e, e.dataframe[0].value
    raise AssertionError(f"{table} not listed: {[e.label for e in at.expander]}")


def test_every_table_and_column_with_counts_types_nulls(app_env):
    at = dictionary()
    assert sorted(e.label.split(" ")[0] for e in at.expander) == ["cards", "merchants", "payments", "topups"]
    pay = app_env.live("payments")
    expander, frame = table_frame(at, "payments")
    assert f"{len(pay):,}행" in expander.label and "결제 (취소 포함)" in expander.label
    rows = frame.set_index("열 이름")
    assert list(rows.index) == ["payment_id", "card_id", "merchant_id", "amount_krw", "status", "created_at",
                                "cancelled_at", "updated_at", "_source_ts", "_ingested_at"]
    assert rows.loc["amount_krw", "형식"] == "BIGINT"
    assert rows.loc["created_at", "형식"] == "TIMESTAMP WITH TIME ZONE"
    assert rows.loc["amount_krw", "이름"] == "결제 금액(원)"
    assert rows.loc["amount_krw", "설명"] == "결제 금액(원) / amount (KRW)"
    null_share = pay["cancelled_at"].isna().mean() * 100
    assert rows.loc["cancelled_at", "빈 값 비율"] == f"{null_share:.1f}%"
    assert rows.loc["payment_id", "빈 값 비율"] == "0.0%"
    examples = rows.loc["status", "값 예시"].split(", ")
    assert set(examples) <= {"승인", "취소"} and examples  # vocabulary shown as words


def test_absent_and_pseudonymised_columns_are_named(app_env):
    at = dictionary()
    merchants, _ = table_frame(at, "merchants")
    text = " ".join(m.value for m in merchants.markdown)
    assert "개인정보" in text and "`owner_name`" in text and "`business_reg_no`" in text
    cards, _ = table_frame(at, "cards")
    text = " ".join(m.value for m in cards.markdown)
    assert "`card_number`" in text and "`member_id`" in text and "가명" in text


def test_english(app_env):
    at = dictionary("en")
    expander, frame = table_frame(at, "topups")
    assert "top-ups" in expander.label and "rows" in expander.label
    rows = frame.set_index("Column")
    assert rows.loc["channel", "Label"] == "Channel"  # a label, capitalised (pipeline.toml says "channel")
    assert set(rows.loc["channel", "Example values"].split(", ")) <= {
        "Bank transfer", "Card", "Convenience store", "Mobile", "Auto charge"}
    _, merchants = table_frame(at, "merchants")
    regions = merchants.set_index("Column").loc["region", "Example values"]
    assert regions and not any("\uac00" <= ch <= "\ud7a3" for ch in regions)  # romanised in English
