"""The PII guard and the keyed hash, on values a person would recognise."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from faker import Faker

from ingest.pii import PiiDetected, classify, find_pii, keyed_hash, luhn_ok
from ingest.simulate import card_number


@pytest.mark.parametrize("value, pattern", [
    ("010-1234-5678", "phone number"),
    ("01012345678", "phone number"),
    ("02-123-4567", "phone number"),
    ("+82 10-9876-5432", "phone number"),
    ("연락처 031 765 4321 로 전화", "phone number"),
    ("hong.gildong@example.co.kr", "e-mail address"),
    ("문의: a_b+c@mail.example.com", "e-mail address"),
    ("900101-1234567", "resident registration number"),
    ("0312254123456", "resident registration number"),
    ("4111 1111 1111 1111", "card number"),
    ("4111-1111-1111-1111", "card number"),
    (4111111111111111, "card number"),
])
def test_personal_values_are_recognised(value, pattern):
    assert classify(value) == pattern


@pytest.mark.parametrize("value", [
    "2026-11-24T10:00:00.123456+09:00", "2026-11-24", 15000, 1_234_567_890, 3.14, True, None,
    "서울", "convenience_store", "주식회사 스타 12호점",
    "4111 1111 1111 1112",  # 16 digits, Luhn fails: not a card number
    "9913011234567",  # 13 digits, month 13: not a resident registration number
    "member@", "user at example dot com",
])
def test_ordinary_values_are_not_flagged(value):
    assert classify(value) is None


def test_generated_personal_data_is_always_caught():
    fake = Faker("ko_KR")
    fake.seed_instance(5)
    rng = random.Random(5)
    for _ in range(300):
        assert classify(fake.phone_number()) == "phone number"
        assert classify(fake.email()) == "e-mail address"
        assert classify(fake.ssn()) == "resident registration number"
        number = card_number(rng)
        assert luhn_ok(number) and len(number) == 16
        assert classify(number) == "card number"


def test_keyed_hashes_never_look_personal():
    # 64 hex characters can hold a 16-digit run; hashed columns are exempt from
    # the guard, but the hashes of ordinary ids should not trip it anyway often.
    key = b"k"
    flagged = sum(classify(keyed_hash(i, key)) is not None for i in range(2000))
    assert flagged < 20


def test_finding_names_table_column_pattern_never_the_value():
    rows = [{"merchant_id": 1, "merchant_name": "김밥천국"}, {"merchant_id": 2, "merchant_name": "사장님 010-5555-1234"}]
    finding = find_pii("merchants", rows, ["merchant_id", "merchant_name"])
    assert (finding.table, finding.column, finding.pattern) == ("merchants", "merchant_name", "phone number")
    message = str(PiiDetected(finding))
    assert "merchants" in message and "merchant_name" in message and "phone number" in message
    assert "5555" not in message


def test_keyed_hash_is_an_hmac_not_a_plain_digest():
    key = b"secret-key"
    got = keyed_hash(42, key)
    assert got == hmac.new(key, b"42", hashlib.sha256).hexdigest()
    assert got != hashlib.sha256(b"42").hexdigest()
    assert keyed_hash(42, b"other-key") != got  # the key matters
    assert keyed_hash(42, key) == got  # deterministic: ids still join
    assert keyed_hash(None, key) is None
