"""AOIs: de-duplicated MultiPolygons in EPSG:4326 that records point to.

An AOI is stored once: its key is the sha256 of its normalised WKB (ring order and start points made
canonical by ``shapely.normalize``), under a unique constraint. Creating an AOI inserts with
``ON CONFLICT DO NOTHING`` and reads back the id of whichever row holds the hash, so concurrent
creators of the same AOI all get the same id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from sqlalchemy.engine import Connection

from ..errors import InvalidArgument, NotFound
from .db.engine import Connected
from .db.schema import aois
from .db.spatial import insert_rtree
from .db.sqlutil import chunks, dialect_insert
from .geometry import as_multipolygon, geom_array, normalized_wkb, wkb_hash


def ensure_aois(conn: Connection, geoms: np.ndarray) -> tuple[list[int], set[int]]:
    """Ids of the AOIs equal to ``geoms`` (validated MultiPolygons), creating the missing ones; and the ids
    of those created (so that a caller that ends up not using them can remove them)."""
    if geoms.size == 0:
        return [], set()
    normal = shapely.normalize(geoms)  # stored canonical; normalising again for the key changes nothing
    hashes = [wkb_hash(w) for w in normalized_wkb(normal)]
    first: dict[str, int] = {}
    for i, h in enumerate(hashes):
        first.setdefault(h, i)
    # Sorted by hash: concurrent writers of overlapping AOI sets take row locks in the same order.
    rows = [{"geom": normal[first[h]], "hash": h} for h in sorted(first)]
    stmt = dialect_insert(conn, aois).on_conflict_do_nothing().returning(aois.c.id, aois.c.hash)
    inserted = {h: i for i, h in conn.execute(stmt, rows).all()}
    if inserted:
        insert_rtree(conn, "aois", list(inserted.values()), [geoms[first[h]] for h in inserted])
    ids = dict(inserted)
    missing = [h for h in first if h not in ids]
    for part in chunks(missing):
        ids.update({h: i for i, h in conn.execute(sa.select(aois.c.id, aois.c.hash).where(aois.c.hash.in_(part)))})
    return [int(ids[h]) for h in hashes], {int(i) for i in inserted.values()}


def aoi_id_arg(value: Any) -> int:
    """Check an AOI id argument (a positive integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"an AOI id is a positive integer (from create_aoi), not {value!r}")
    return value


class AoiMixin(Connected):
    """create_aoi / get_aoi."""

    def create_aoi(self, geometry: Any) -> int:
        """Store a (Multi)Polygon in EPSG:4326 and return its id; an identical AOI returns the existing id.

        ``geometry``: shapely geometry, WKT, WKB or GeoJSON mapping; a Polygon becomes a MultiPolygon.
        Raises InvalidGeometry (wrong type, empty, invalid, outside lon/lat bounds).
        """
        geom = as_multipolygon(geometry)
        with self._tx() as conn:
            return ensure_aois(conn, geom_array([geom]))[0][0]

    def get_aoi(self, aoi_id: int) -> MultiPolygon:
        """The MultiPolygon (EPSG:4326) of an AOI. Raises NotFound."""
        aoi_id = aoi_id_arg(aoi_id)
        with self._tx(write=False) as conn:
            geom = conn.execute(sa.select(aois.c.geom).where(aois.c.id == aoi_id)).scalar()
        if geom is None:
            raise NotFound(f"no AOI with id {aoi_id}")
        return geom
