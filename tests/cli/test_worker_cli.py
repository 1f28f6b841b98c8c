"""`lipsync worker`: it refuses what cannot work before starting anything (it runs in
tests/server/test_several_machines.py)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from lipsync.cli import app


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIPSYNC_STORE_URL", "LIPSYNC_DEVICES"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_env")
def test_a_worker_needs_a_shared_store() -> None:
    result = CliRunner().invoke(app, ["worker", "--store-url", "sqlite:///jobs.sqlite3"])
    assert result.exit_code == 2
    assert "needs a store shared with the API processes" in result.output


@pytest.mark.usefixtures("clean_env")
def test_an_unknown_store_scheme_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["worker", "--store-url", "mysql://db/x"])
    assert result.exit_code == 2
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # rich's error box, unwrapped
    assert "store_url must start with one of sqlite://, postgresql://, postgres://" in text
