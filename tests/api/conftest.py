"""A real API server (uvicorn in a child process on 127.0.0.1) in front of SQLite and of PostGIS.

``api`` is one server per backend for the session of a test process, with a token per scope; its
catalogue is emptied (tokens kept) before each test. The PostGIS server has a database of its own, so
that the catalogue tests emptying their worker database never remove its tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from geocube_dask.catalog.db.schema import metadata


@pytest.fixture(scope="session")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from servers import api_server

    with api_server(f"sqlite:///{tmp_path_factory.mktemp('api') / 'catalog.db'}") as server:
        yield server


@pytest.fixture(scope="session")
def postgis_api(worker_id: str) -> Iterator[Any]:
    from conftest import CHECKOUT_TAG, _need_postgis, create_postgis_database, drop_postgis_database
    from servers import api_server

    _need_postgis()
    name = f"geocube_api_{CHECKOUT_TAG}_{worker_id}"
    url = create_postgis_database(name)
    try:
        with api_server(url) as server:
            yield server
    finally:
        drop_postgis_database(name)


def empty_catalogue(db_url: str) -> None:
    """Delete every catalogue row but the API tokens."""
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "api_tokens":
                conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgis"])
def api(request: pytest.FixtureRequest) -> Any:
    """A running API server with an empty catalogue: ``.url``, ``.tokens[scope]``, ``.connect(scope)``."""
    server = request.getfixturevalue(f"{request.param}_api")
    empty_catalogue(server.db_url)
    return server


@pytest.fixture
def local_api(sqlite_api: Any) -> Any:
    """The SQLite server only (for tests whose subject is the HTTP layer, not the backend)."""
    empty_catalogue(sqlite_api.db_url)
    return sqlite_api
