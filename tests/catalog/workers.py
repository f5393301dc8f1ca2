"""Functions run in child processes (multiprocessing, spawn) by the concurrency tests.

They live outside the test modules so that a child only imports what it needs.
"""

from __future__ import annotations

from typing import Any


def open_catalogue(url: str, barrier: Any) -> str:
    """Wait for the other process, then open (and so migrate) the catalogue; return its schema revision."""
    import geocube_dask as gd
    from geocube_dask.catalog.db.migrate import current_revisions

    barrier.wait()
    gc = gd.connect(url)
    with gc._tx(write=False) as conn:
        revision = current_revisions(conn)[0]
    gc.close()
    return revision


def add_prepared(url: str, barrier: Any, record_id: str, instance_id: str, uris: list[str]) -> list[int]:
    """Add one dataset per uri (all in one call) once both processes are ready; return the dataset ids."""
    import geocube_dask as gd

    from .helpers import prepared

    gc = gd.connect(url)
    items = [(record_id, instance_id, prepared(uri)) for uri in uris]
    barrier.wait()
    ids = [d.id for d in gc.add_datasets(items)]
    gc.close()
    return ids


def index_files(url: str, barrier: Any, instance_id: str, paths: list[str]) -> list[int]:
    """Index files with a NewRecord each (same names in both processes); return the dataset ids."""
    import geocube_dask as gd
    from geocube_dask.catalog.ingest.requests import IndexRequest, NewRecord

    gc = gd.connect(url)
    requests = [
        IndexRequest(uri=p, record=NewRecord(f"scene-{i}", "2024-01-05T10:30:00Z"), instance=instance_id)
        for i, p in enumerate(paths)
    ]
    barrier.wait()
    ids = [d.id for d in gc.index_datasets(requests)]
    gc.close()
    return ids
