"""A PostgreSQL database for tests: ``LIPSYNC_TEST_POSTGRES_URL`` (``.ci/postgres start`` gives one).

Each test gets its own schema (dropped afterwards) through the URL's ``search_path``, so tests never see
each other's rows. Without the variable the tests skip with how to get a server, except under CI=true,
where they fail: a skip must never stand in for a pass in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

__all__ = ["postgres_url"]

HOW_TO = (
    "no PostgreSQL for the tests: set LIPSYNC_TEST_POSTGRES_URL=postgresql://user@host:port/db, or start a "
    'throwaway cluster (Debian: apt-get install postgresql) with: eval "$(.ci/postgres start)"'
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema."""
    base = os.environ.get("LIPSYNC_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(HOW_TO)
        pytest.skip(HOW_TO)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
