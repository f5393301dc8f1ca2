"""AOIs: de-duplicated MultiPolygons in EPSG:4326 that records point to.

An AOI is stored once: its key is the sha256 of its normalised WKB (ring order and start points made
canonical by ``shapely.normalize``), under a unique constraint. Creating an AOI inserts with
``ON CONFLICT DO NOTHING`` and reads back the id of whichever row holds the hash, so concurrent
creators of the same AOI all get the same id. An AOI a record uses cannot be deleted; ``tidy`` deletes
the AOIs no record uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import Aoi
from ..errors import DependencyError, InvalidArgument, NotFound
from .db.engine import Connected
from .db.filters import check_paging, paged
from .db.schema import aois, records
from .db.spatial import insert_rtree, intersects
from .db.sqlutil import chunks, delete_rows, dialect_insert
from .geometry import as_multipolygon, geom_array, normalized_wkb, query_area, wkb_hash
from .refs import MAX_ID


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
    if value > MAX_ID:
        raise NotFound(f"no AOI with id {value}: ids are at most {MAX_ID}")
    return value


class AoiMixin(Connected):
    """AOIs: create, read, list, delete."""

    def create_aoi(self, geometry: Any) -> int:
        """Store a (Multi)Polygon in EPSG:4326 and return its id; an identical AOI returns the existing id.

        ``geometry``: shapely geometry, WKT, WKB or GeoJSON mapping; a Polygon becomes a MultiPolygon.
        Raises InvalidGeometry (wrong type, empty, invalid, outside lon/lat bounds).
        """
        geom = as_multipolygon(geometry)
        with self._tx() as conn:
            return ensure_aois(conn, geom_array([geom]))[0][0]

    def get_aoi(self, aoi_id: int) -> Aoi:
        """The AOI with this id (its geometry is a MultiPolygon in EPSG:4326). Raises NotFound."""
        aoi_id = aoi_id_arg(aoi_id)
        with self._tx(write=False) as conn:
            geom = conn.execute(sa.select(aois.c.geom).where(aois.c.id == aoi_id)).scalar()
        if geom is None:
            raise NotFound(f"no AOI with id {aoi_id}: see list_aois()")
        return Aoi(aoi_id, geom)

    def list_aois(self, aoi: Any = None, limit: int | None = None, page: int = 0) -> list[Aoi]:
        """AOIs ordered by id; ``aoi``: only those intersecting this geometry (EPSG:4326, exact test);
        ``limit``/``page``: page ``page`` (0-based) of ``limit`` AOIs."""
        lim, offset = check_paging(limit, page)
        area = None if aoi is None else query_area(aoi)
        stmt = sa.select(aois.c.id, aois.c.geom).order_by(aois.c.id)
        with self._tx(write=False) as conn:
            if area is not None:
                stmt = stmt.where(intersects(conn, aois, area))
            return [Aoi(int(r.id), r.geom) for r in conn.execute(paged(stmt, lim, offset))]

    def delete_aoi(self, aoi_id: int) -> None:
        """Delete an AOI. Raises NotFound, or DependencyError while a record uses it (nothing deleted)."""
        aoi_id = aoi_id_arg(aoi_id)
        with self._tx() as conn:
            if conn.execute(sa.select(aois.c.id).where(aois.c.id == aoi_id)).first() is None:
                raise NotFound(f"no AOI with id {aoi_id}: see list_aois()")
            users = conn.execute(
                sa.select(sa.func.count()).select_from(records).where(records.c.aoi_id == aoi_id)
            ).scalar_one()
            if users:
                raise DependencyError(
                    f"AOI {aoi_id} is the AOI of {users} record(s) and cannot be deleted: delete those records "
                    "first (tidy() deletes the AOIs no record uses)"
                )
            if delete_rows(conn, aois.c.id, [aoi_id])[1]:
                raise DependencyError(f"a record was just created with AOI {aoi_id}: the AOI was not deleted")
