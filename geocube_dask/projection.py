"""CRS names and reprojection shared by the catalogue and the engine (no database, no graph).

``crs_string`` gives one canonical text per CRS; transformers are cached; polygons are reprojected
after densifying their edges, which curve under reprojection.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry.base import BaseGeometry

from .errors import InvalidArgument


def crs_string(crs: Any, what: str = "crs") -> str:
    """Canonical text for a CRS (any form rasterio reads, a rasterio CRS included): ``EPSG:n`` when it
    has an EPSG code, else its WKT. Raises InvalidArgument naming ``what``."""
    try:
        parsed = CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"invalid {what} {crs!r}: unknown CRS ({exc}); give e.g. 'EPSG:32631' or a WKT string"
        ) from None
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.to_wkt()


@lru_cache(maxsize=256)
def transformer(src_crs: str, dst_crs: str) -> Transformer:
    """A cached pyproj transformer between two CRS strings, x/y (lon/lat) axis order."""
    return Transformer.from_crs(ProjCRS.from_user_input(src_crs), ProjCRS.from_user_input(dst_crs), always_xy=True)


@lru_cache(maxsize=256)
def same_crs(a: str, b: str) -> bool:
    """Whether two CRS strings denote the same CRS (EPSG codes compared first, WKT otherwise)."""
    if a == b:
        return True
    return CRS.from_user_input(a) == CRS.from_user_input(b)


def transform_polygon(poly: BaseGeometry, src_crs: str, dst_crs: str, densify: int = 21) -> BaseGeometry:
    """Transform a polygon between CRSs after densifying its edges (``densify`` points per edge)."""
    if same_crs(src_crs, dst_crs):
        return poly
    minx, miny, maxx, maxy = poly.bounds
    step = max(maxx - minx, maxy - miny) / max(densify - 1, 1)
    dense = shapely.segmentize(poly, step) if step > 0 else poly
    tr = transformer(src_crs, dst_crs)

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(dense, fn)
    if not out.is_valid:
        out = shapely.make_valid(out)
    return out
