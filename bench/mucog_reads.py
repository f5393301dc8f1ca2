"""How many byte ranges does GDAL fetch to read one 256×256 window through every record?

Fifty records of a 1024×1024 uint16 cell (256-pixel tiles, ZSTD, two overviews) are written as 50
COGs, then assembled into MUCOGs with the ``mucog`` pattern (full-resolution tiles of all records side
by side) and the ``cog`` pattern (each record contiguous). The same window — aligned on a tile, then
straddling four tiles — is read from every record over HTTP (GDAL's /vsicurl/, default settings)
and the HTTP range requests GDAL makes are counted (from its debug log), with the bytes they carry.
Also printed: the number of contiguous runs the needed tiles form in the file (the floor for any
reader that fetches exactly the tiles it needs).

    python bench/mucog_reads.py            # a minute or so; data in a temporary directory
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from geocube_dask.consolidate.cog import creation_options, write_cog  # noqa: E402
from geocube_dask.consolidate.mucog import assemble_mucog, read_mucog_layout  # noqa: E402
from tests.servers import http_server  # noqa: E402

RECORDS, SIZE, BLOCK = 50, 1024, 256
WINDOWS = {"aligned on a tile": Window(256, 512, 256, 256), "across 4 tiles": Window(384, 640, 256, 256)}
_DOWNLOAD = re.compile(r"Downloading (\d+)-(\d+)")


class Requests(logging.Handler):
    """Collects the byte ranges GDAL's /vsicurl/ downloads (its CPL_DEBUG 'Downloading a-b' lines)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ranges: list[tuple[int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _DOWNLOAD.search(record.getMessage())
        if m:
            self.ranges.append((int(m.group(1)), int(m.group(2))))


def write_records(directory: Path) -> list[str]:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    rng = np.random.default_rng(0)
    options = creation_options("uint16", block_size=BLOCK)
    paths = []
    for r in range(RECORDS):
        data = (2000 + 1000 * np.sin(x / (40 + r)) * np.cos(y / 60) + rng.normal(0, 20, (SIZE, SIZE))).astype("uint16")
        path = directory / f"record-{r:02d}.tif"
        write_cog(data[None], path, "EPSG:32631", Affine(10, 0, 300000, 0, -10, 5000000), 0, options)
        paths.append(str(path))
    return paths


def read_all(names: list[str], window: Window) -> tuple[int, int, float]:
    """Range requests, bytes fetched and a checksum for reading ``window`` of each named dataset."""
    handler = Requests()
    logger = logging.getLogger("rasterio")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    total = 0.0
    try:
        with rasterio.Env(CPL_DEBUG="ON", GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            for name in names:
                with rasterio.open(name) as ds:
                    total += float(ds.read(1, window=window).sum())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.WARNING)
    return len(handler.ranges), sum(b - a + 1 for a, b in handler.ranges), total


def tile_runs(path: str, window: Window) -> int:
    """Contiguous runs formed in the file by the full-resolution tiles the window needs, all records."""
    info = read_mucog_layout(path)
    cols = range(int(window.col_off) // BLOCK, (int(window.col_off + window.width) - 1) // BLOCK + 1)
    rows = range(int(window.row_off) // BLOCK, (int(window.row_off + window.height) - 1) // BLOCK + 1)
    per_row = -(-SIZE // BLOCK)
    wanted = {row * per_row + col for row in rows for col in cols}
    positions = [n for n, (_, _, z, t) in enumerate(info.order) if z == 0 and t in wanted]
    return 1 + sum(1 for a, b in zip(positions, positions[1:], strict=False) if b != a + 1)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cogs = write_records(root)
        assemble_mucog(cogs, str(root / "mucog.tif"), "mucog")
        assemble_mucog(cogs, str(root / "cog-order.tif"), "cog")
        with http_server(root) as server:
            def layouts(run: int) -> dict[str, list[str]]:
                """Dataset names; ``run`` goes in the query so that GDAL's download cache starts empty."""
                def url(name: str) -> str:
                    return f"/vsicurl/{server.url(name)}?run={run}"

                return {
                    "50 COGs": [url(Path(p).name) for p in cogs],
                    "MUCOG, pattern mucog": [f"GTIFF_DIR:{i + 1}:{url('mucog.tif')}" for i in range(RECORDS)],
                    "MUCOG, pattern cog": [f"GTIFF_DIR:{i + 1}:{url('cog-order.tif')}" for i in range(RECORDS)],
                }

            print(f"{RECORDS} records, {SIZE}×{SIZE} uint16, {BLOCK}-pixel tiles; one 256×256 window per record")
            print(f"{'window':<20} {'files':<22} {'HTTP ranges':>11} {'MiB fetched':>11} {'tile runs':>9}")
            for run, (wname, window) in enumerate(WINDOWS.items()):
                checks = set()
                for lname, names in layouts(run).items():
                    n, nbytes, total = read_all(names, window)
                    checks.add(total)
                    runs = "" if lname == "50 COGs" else tile_runs(
                        str(root / ("mucog.tif" if "mucog" in lname else "cog-order.tif")), window)
                    print(f"{wname:<20} {lname:<22} {n:>11} {nbytes / 2**20:>11.2f} {runs!s:>9}")
                assert len(checks) == 1, "the three layouts must give the same pixels"


if __name__ == "__main__":
    main()
