"""Fixtures: a second database of the dialect under test (for the second server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hs.storage.database import DatabaseConfig


@pytest.fixture
def second_database_config(request: pytest.FixtureRequest, database_config: DatabaseConfig,
                           tmp_path: Path):  # type: ignore[no-untyped-def]
    if database_config.dialect == "sqlite":
        yield DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs_b.db"))
        return
    pg = request.getfixturevalue("pg_server")
    name = pg.create_database()
    yield pg.config(name)
    pg.drop_database(name)
