"""A task's memory follows its output chunk, not the source scale.

Without a usable overview, an output pixel at scale 8 covers 64 source pixels: a 512² chunk of four
uint16 bands (2 MiB of output) needs a 4096² window of source (128 MiB, 1 GiB as the kernels' float64
copy). The engine reads such windows in strips of output rows; the peak memory of computing the chunk
(GDAL's block cache included) is measured in a fresh process from the kernel's high-water mark of
resident memory, reset just before the computation (``/proc/self/clear_refs``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from scenes import make_plan, source_for

from geocube_dask.entities import DFormat
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid
from geocube_dask.synthetic import write_raster

SIZE = 4096  # source pixels per side (10 m), no overviews
ORIGIN = (600000.0, 5100000.0)
LIMIT = 256 * 2**20  # the growth allowed for one 512² chunk at scale 8

_PROBE = """
import sys
sys.path[:0] = {paths!r}
import dask
from test_memory import plan_for
from geocube_dask.graph.cube import cube_from_plan

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

cube = cube_from_plan(plan_for({path!r}, {method!r}, 512))
dask.compute(cube[:, :, :4, :4], scheduler="sync")  # imports and first open paid before measuring
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
dask.compute(cube, scheduler="sync")
print(status("VmHWM") - base)
"""


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = (3000 + 1000 * np.sin(x / 50.0) * np.cos(y / 70.0)).astype("uint16")
    data = np.stack([base, base + 10, base + 20, base + 30])
    path = tmp_path_factory.mktemp("memory") / "no-overviews.tif"
    write_raster(path, data, crs="EPSG:32631", transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), nodata=0,
                 overviews=())
    return str(path)


def plan_for(path: str, method: str, chunks: int):
    """One image of the source on an 80 m grid (scale 8), 510² pixels, in ``chunks``."""
    src = source_for(path, dformat=DFormat("uint16", 0, 0, 10000))
    x0, y1 = ORIGIN
    grid = make_grid("EPSG:32631", 80.0, (x0 + 80, y1 - SIZE * 10 + 80, x0 + SIZE * 10 - 80, y1 - 80))
    return make_plan([[src]], grid, resampling=method, chunks=chunks)


@pytest.mark.parametrize("method", ["bilinear", "near", "average"])
def test_a_chunk_at_scale_8_without_overviews_stays_within_256_mib(big_source: str, method: str) -> None:
    tests = Path(__file__).resolve().parent
    code = _PROBE.format(paths=[str(tests), str(tests.parent)], path=big_source, method=method)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tests)
    growth = int(out.stdout.split()[-1])
    assert growth <= LIMIT, f"{method}: the process grew by {growth / 2**20:.0f} MiB for a 2 MiB chunk"


@pytest.mark.parametrize("method", ["bilinear", "average", "near"])
def test_strips_give_the_values_of_whole_windows(big_source: str, method: str) -> None:
    """A 512² chunk is read in strips at scale 8; 64² chunks are read whole: the values are the same."""
    strips = cube_from_plan(plan_for(big_source, method, 512)).compute(scheduler="threads").values
    whole = cube_from_plan(plan_for(big_source, method, 64)).compute(scheduler="threads").values
    np.testing.assert_array_equal(strips, whole)
