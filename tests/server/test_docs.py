"""docs/server.md documents every setting the server reads."""

from __future__ import annotations

import pytest

from lipsync.server.settings import ServerSettings
from tests.conftest import REPO_ROOT


def test_every_setting_is_in_the_settings_table() -> None:
    text = (REPO_ROOT / "docs" / "server.md").read_text()
    missing = [name for name in ServerSettings.model_fields if f"| `LIPSYNC_{name.upper()}` |" not in text]
    assert not missing, f"docs/server.md lacks rows for: {missing}"


def test_lists_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIPSYNC_API_KEYS", "a, b,,c")
    monkeypatch.setenv("LIPSYNC_FETCH_ALLOW", "127.0.0.1,10.0.0.0/8")
    settings = ServerSettings()
    assert settings.api_keys == ["a", "b", "c"]
    assert settings.fetch_allow == ["127.0.0.1", "10.0.0.0/8"]
