"""Cubes over the antimeridian and around a pole, through the catalogue, against the plain reference.

Every dataset the output grid covers must be found (catalogue search area, then the planner's
source-touches-grid test) and its pixels must equal the reference's (nearest, exact pyproj coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from reference import RefGrid, RefSource, reference_image

from geocube_dask.catalog.indexing import NewRecord
from geocube_dask.synthetic import write_reflectance

BANDS = ["B2", "B3", "B4", "B8"]


@dataclass(frozen=True)
class Raster:
    """A synthetic scene: CRS, pixel size, size, and where it is (centre in lon/lat, or an explicit origin)."""

    crs: str
    res: tuple[float, float]
    width: int
    height: int
    centre: tuple[float, float] | None = None
    origin: tuple[float, float] | None = None
    overviews: tuple[int, ...] = (2, 4)

    def transform(self) -> Affine:
        if self.origin is not None:
            x0, y0 = self.origin
        else:
            assert self.centre is not None
            x, y = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True).transform(*self.centre)
            x0, y0 = x - self.width / 2 * self.res[0], y + self.height / 2 * self.res[1]
        return Affine(self.res[0], 0.0, x0, 0.0, -self.res[1], y0)


# Around the antimeridian at 52°N (the Aleutians): UTM 60N straddling 180°, UTM 1N east of it, and a
# lon/lat scene on each side of it.
PACIFIC = {
    "utm60-across": Raster("EPSG:32660", (500.0, 500.0), 200, 160, centre=(180.0, 52.0)),
    "utm01-east": Raster("EPSG:32601", (400.0, 400.0), 150, 150, centre=(-179.3, 52.15)),
    "lonlat-west": Raster("EPSG:4326", (0.004, 0.004), 200, 150, origin=(179.2, 52.3)),
    "lonlat-east": Raster("EPSG:4326", (0.004, 0.004), 200, 150, origin=(-180.0, 52.25)),
}
PACIFIC_CORNERS = ((178.9, 51.6), (-178.7, 52.45))  # (lon, lat) of the south-west and north-east corners

# Around the north pole: UTM 33N and lon/lat scenes near 80°N, and a lon/lat cap round the pole.
ARCTIC = {
    "utm33-80n": Raster("EPSG:32633", (1000.0, 1000.0), 200, 200, centre=(15.0, 80.0)),
    "lonlat-80n": Raster("EPSG:4326", (0.02, 0.02), 500, 50, origin=(-100.0, 80.5)),
    "lonlat-cap": Raster("EPSG:4326", (0.5, 0.02), 720, 200, origin=(-180.0, 90.0), overviews=()),
}


def write_all(root: Path, rasters: dict[str, Raster]) -> dict[str, str]:
    paths = {}
    for seed, (name, r) in enumerate(rasters.items(), start=1):
        path = root / f"{name}.tif"
        write_reflectance(path, crs=r.crs, transform=r.transform(), width=r.width, height=r.height, seed=seed,
                          nodata=0, nodata_fraction=0.1, overviews=r.overviews)
        paths[name] = str(path)
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("worldwide")
    return write_all(root, PACIFIC) | write_all(root, ARCTIC)


def index(gc, files: dict[str, str], names: list[str]):
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS, resampling="near")
    inst = gc.instantiate(var, "world")
    for day, name in enumerate(names, start=1):
        gc.index_dataset(files[name], record=NewRecord(name, f"2024-05-{day:02d}T10:00:00Z"), instance=inst)
    return inst


def check_against_reference(cube, files: dict[str, str], names: list[str]) -> None:
    assert sorted(cube.record_names.values) == sorted(names)  # every dataset found
    with dask.config.set(scheduler="threads", num_workers=2):
        values = cube.compute().values
    grid = RefGrid(cube.rio.crs.to_string(), cube.rio.transform(), cube.sizes["x"], cube.sizes["y"])
    for i, name in enumerate(cube.record_names.values):
        src = RefSource(files[name], (1, 2, 3, 4), 0.0, 10000.0, 0.0, 10000.0)
        want = reference_image([src], grid, "uint16", 0, "near", 4)
        assert (want != 0).sum() > 100, name  # the scene really is on the grid
        assert np.array_equal(values[i], want), name


@pytest.mark.parametrize("crs", ["EPSG:3832", "EPSG:32660", "EPSG:32601"])
def test_cube_across_the_antimeridian_finds_every_dataset(gc, files, crs):
    inst = index(gc, files, list(PACIFIC))
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    (lon0, lat0), (lon1, lat1) = PACIFIC_CORNERS
    xs, ys = tr.transform([lon0, lon0, lon1, lon1], [lat0, lat1, lat0, lat1])
    cube = gc.get_cube(inst, crs=crs, resolution=1000, bounds=(min(xs), min(ys), max(xs), max(ys)), chunks=64)
    check_against_reference(cube, files, list(PACIFIC))


def test_lonlat_cube_past_180_finds_the_projected_datasets_beyond(gc, files):
    """A lon/lat grid from 179.4° to 180.6°: UTM 1N data east of the antimeridian is at 180..180.6°."""
    names = ["utm60-across", "utm01-east"]
    inst = index(gc, files, names)
    cube = gc.get_cube(inst, crs="EPSG:4326", resolution=0.01, bounds=(179.4, 51.7, 180.6, 52.4), chunks=64)
    check_against_reference(cube, files, names)


def test_polar_cube_around_the_pole_finds_every_dataset(gc, files):
    inst = index(gc, files, list(ARCTIC))
    cube = gc.get_cube(inst, crs="EPSG:3413", resolution=4000, bounds=(-1200000, -1200000, 1200000, 1200000),
                       chunks=128)
    check_against_reference(cube, files, list(ARCTIC))


def test_polar_cube_beside_the_pole_finds_the_cap_around_it(gc, files):
    """A grid that does not contain the pole but overlaps the cap that surrounds it."""
    names = ["lonlat-cap", "utm33-80n"]
    inst = index(gc, files, names)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3413", always_xy=True).transform(15.0, 83.7)
    side = 2 * math.hypot(x, y) * 0.7  # from about 200 km to 1200 km from the pole
    cube = gc.get_cube(inst, crs="EPSG:3413", resolution=3000, bounds=(x - side / 2, y - side / 2, x + side / 2,
                                                                       y + side / 2), chunks=128)
    check_against_reference(cube, files, names)
