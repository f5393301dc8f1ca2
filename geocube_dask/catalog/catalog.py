"""The catalogue: every entity of GEOCUBE.md, on SQLite or PostGIS (being written)."""

from __future__ import annotations


class Catalog:
    def __init__(self, url: str) -> None:
        self.url = url

    def close(self) -> None:
        pass
