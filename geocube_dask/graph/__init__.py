"""Requests → plans → dask graphs → xarray, without any database access."""

from .chunk import clear_caches
from .cube import cube_from_plan
from .grid import GridSpec, make_grid
from .load import load
from .plan import CubePlan

__all__ = ["CubePlan", "GridSpec", "clear_caches", "cube_from_plan", "load", "make_grid"]
