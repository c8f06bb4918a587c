"""[subscriptions] and [app] public_url in pipeline.toml: defaults, and a typo that says what to fix."""

from __future__ import annotations

import pytest

from ingest.config import ConfigError, load_config


def write(tmp_path, text: str):
    path = tmp_path / "pipeline.toml"
    path.write_text(f'[warehouse]\npath = "{tmp_path}/w.duckdb"\n' + text, encoding="utf-8")
    return path


def test_defaults_when_the_section_is_absent(tmp_path):
    cfg = load_config(write(tmp_path, ""), needs=("warehouse",), environ={})
    assert cfg.subscriptions.max_attachment_bytes == 5_000_000 and cfg.subscriptions.late_after_seconds == 600
    assert cfg.app.public_url == "http://localhost:8501"


def test_values_and_a_trailing_slash(tmp_path):
    cfg = load_config(write(tmp_path, '[app]\npublic_url = "https://desk.example/"\n[subscriptions]\n'
                                      'max_attachment_bytes = 1000\ncheck_seconds = 5\n'), needs=("warehouse",), environ={})
    assert cfg.app.public_url == "https://desk.example"
    assert (cfg.subscriptions.max_attachment_bytes, cfg.subscriptions.check_seconds) == (1000, 5.0)


@pytest.mark.parametrize("text, message", [
    ("[subscriptions]\nmax_attachment_byte = 1\n", "did you mean max_attachment_bytes"),
    ("[subscriptions]\ncheck_seconds = \"often\"\n", "expected a number"),
    ("[subscriptions]\nbody_rows = -1\n", "at least 0"),
])
def test_a_bad_value_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), needs=("warehouse",), environ={})
