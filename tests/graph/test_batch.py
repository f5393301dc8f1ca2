"""Batch reads of MUCOG images (geocube_dask.graph.batch): the pixels of the plain reference, few requests.

Each record is written as its own COG by GDAL's COG driver, the records are assembled into a MUCOG,
and the MUCOG is served over HTTP (a server that counts requests) or S3. A cube over the MUCOG's images
must equal the reference computed from the per-record COGs (tests/reference.py: plain rasterio reads
of each whole COG), and fetch a number of byte ranges that does not grow with the number of records.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.windows import Window
from reference import reference_image
from scenes import make_plan, origin_near, ref_grid, ref_of, source_for

from geocube_dask.consolidate.mucog import assemble_mucog
from geocube_dask.entities import DFormat
from geocube_dask.errors import InvalidArgument, SourceReadError
from geocube_dask.graph import batch
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid
from geocube_dask.graph.plan import Source
from geocube_dask.graph.read import Prefetched, PrefetchedReader
from geocube_dask.graph.tiffindex import read_tiff_index
from geocube_dask.graph.vsi import memory_file

CRS = "EPSG:32631"
WIDTH, HEIGHT, BLOCK = 512, 384, 128  # 4×3 tiles at full resolution; overviews 256×192 and 128×96
TRANSFORM = origin_near(CRS, 10.0, WIDTH, HEIGHT)
RECORDS = 16
NO_LISTING = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}

# name: (dtype, bands, nodata, creation options, bands stored separately)
KINDS = {
    "uint16-zstd": ("uint16", 4, 0, {"COMPRESS": "ZSTD", "PREDICTOR": "2"}, False),
    "int16-separate-deflate": ("int16", 3, -1, {"COMPRESS": "DEFLATE"}, True),
    "float32-lerc": ("float32", 2, float("nan"), {"COMPRESS": "LERC_ZSTD", "MAX_Z_ERROR": "0"}, False),
}


def record_pixels(dtype: str, bands: int, nodata: float, seed: int) -> np.ndarray:
    """Smooth values with noise, and a nodata corner that leaves whole tiles empty (sparse in the file)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    out = np.empty((bands, HEIGHT, WIDTH), dtype=dtype)
    for b in range(bands):
        field = 500 + 300 * np.sin(x / (31 + 3 * b + seed)) * np.cos(y / (47 + seed))
        out[b] = (field + rng.normal(0, 4, (HEIGHT, WIDTH))).astype(dtype)
    out[:, :BLOCK, : BLOCK * 2] = nodata  # tiles (0, 0) and (0, 1) hold nothing
    out[:, 200:230, 300:340] = nodata  # and a hole inside a tile
    return out


def write_record(path: Path, kind: str, seed: int) -> str:
    """One record's COG, by GDAL (the COG driver; GTiff with copied overviews for separate planes)."""
    dtype, bands, nodata, options, separate = KINDS[kind]
    src = path.with_suffix(".src.tif")
    profile = dict(driver="GTiff", width=WIDTH, height=HEIGHT, count=bands, dtype=dtype, crs=CRS,
                   transform=TRANSFORM, nodata=nodata)
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(record_pixels(dtype, bands, nodata, seed))
    if separate:
        with rasterio.open(src, "r+") as ds:
            ds.build_overviews([2, 4], rasterio.enums.Resampling.average)
        rasterio.shutil.copy(src, path, driver="GTiff", TILED="YES", BLOCKXSIZE=BLOCK, BLOCKYSIZE=BLOCK,
                             INTERLEAVE="BAND", COPY_SRC_OVERVIEWS="YES", SPARSE_OK="TRUE", **options)
    else:
        rasterio.shutil.copy(src, path, driver="COG", BLOCKSIZE=BLOCK, SPARSE_OK="TRUE", OVERVIEW_COUNT=2,
                             **options)
    src.unlink()
    return str(path)


@dataclasses.dataclass
class Mucog:
    """A MUCOG of RECORDS records and the per-record COGs it was assembled from."""

    kind: str
    path: Path
    cogs: list[str]

    def sources(self, uri: str, count: int = RECORDS) -> list[Source]:
        """Plan sources of the first ``count`` records, as images of the MUCOG at ``uri``."""
        dtype, bands, nodata, _, _ = KINDS[self.kind]
        dformat = DFormat(dtype, nodata, 0.0, 10000.0)
        return [dataclasses.replace(source_for(cog, bands=tuple(range(1, bands + 1)), dformat=dformat,
                                               record_id=f"r{i}", dataset_id=i),
                                    uri=uri, subdir=f"GTIFF_DIR:{i + 1}")
                for i, cog in enumerate(self.cogs[:count])]

    def expected(self, grid: Any, resampling: str, count: int = RECORDS) -> np.ndarray:
        """The reference cube, read from the per-record COGs."""
        dtype, bands, nodata, _, _ = KINDS[self.kind]
        dformat = DFormat(dtype, nodata, 0.0, 10000.0)
        out = []
        for i, cog in enumerate(self.cogs[:count]):
            src = source_for(cog, bands=tuple(range(1, bands + 1)), dformat=dformat, record_id=f"r{i}")
            out.append(reference_image([ref_of(src)], ref_grid(grid), dtype, nodata, resampling, bands))
        return np.stack(out)


def build_mucog(root: Path, kind: str) -> Mucog:
    cogs = [write_record(root / f"record-{i:02d}.tif", kind, seed=i) for i in range(RECORDS)]
    path = root / "mucog.tif"
    assemble_mucog(cogs, str(path), "mucog")
    return Mucog(kind, path, cogs)


@pytest.fixture(scope="module", params=list(KINDS))
def mucog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Mucog:
    return build_mucog(tmp_path_factory.mktemp(f"mucog-{request.param}"), request.param)


@pytest.fixture(scope="module")
def served(mucog: Mucog, http_server: Any) -> str:
    """The MUCOG's URL on the counting HTTP server (a fresh name per module: GDAL caches what it saw)."""
    return http_server.put(mucog.path, f"batch/{uuid.uuid4().hex}/{mucog.kind}.tif")


def plan_for(mucog: Mucog, uri: str, grid: Any, *, count: int = RECORDS, resampling: str = "near",
             chunks: int = 100, **kw: Any) -> Any:
    dtype, bands, nodata, _, _ = KINDS[mucog.kind]
    return make_plan([[s] for s in mucog.sources(uri, count)], grid, resampling=resampling, chunks=chunks,
                     dformat=DFormat(dtype, nodata, 0.0, 10000.0), bands=[f"b{b}" for b in range(bands)],
                     gdal_env={**NO_LISTING, **kw.pop("gdal_env", {})}, **kw)


def batch_keys(cube: Any) -> list[Any]:
    return [k for k in dict(cube.data.__dask_graph__()) if isinstance(k, tuple) and str(k[0]).endswith("-batch")]


def compute(plan: Any, **config: Any) -> np.ndarray:
    with dask.config.set(scheduler="threads", **config):
        return cube_from_plan(plan).values


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # NaN equals NaN here


def tile_bounds(row: int, col: int, rows: int = 1, cols: int = 1) -> tuple[float, ...]:
    """Bounds of the full-resolution tiles [row, row + rows) × [col, col + cols)."""
    x0 = TRANSFORM.c + col * BLOCK * 10.0
    y1 = TRANSFORM.f - row * BLOCK * 10.0
    return (x0, y1 - rows * BLOCK * 10.0, x0 + cols * BLOCK * 10.0, y1)


GRIDS = {
    # name: (resolution, bounds relative to the MUCOG's corner, resampling)
    "aligned, chunks across tiles": (10.0, (35, -45, WIDTH * 10 + 35, -HEIGHT * 10 - 45), "near"),
    "the first overview, aligned": (20.0, (0, 0, WIDTH * 10, -HEIGHT * 10), "near"),
    "resampled at full resolution": (15.0, (-300, 200, 4000, -3000), "near"),
    "bilinear, from the first overview": (27.0, (-500, 500, 5000, -4000), "bilinear"),
}


@pytest.mark.parametrize("case", list(GRIDS))
def test_a_cube_over_a_served_mucog_equals_the_reference(mucog: Mucog, served: str, case: str) -> None:
    """``near``: the plain reference read from the per-record COGs. ``bilinear`` (whose kernels
    tests/graph/test_cube.py checks against GDAL within one unit): exactly the values of the same cube
    over the per-record COGs, read one by one."""
    res, (a, b, c, d), resampling = GRIDS[case]
    grid = make_grid(CRS, res, (TRANSFORM.c + a, TRANSFORM.f + d, TRANSFORM.c + c, TRANSFORM.f + b))
    plan = plan_for(mucog, served, grid, resampling=resampling)
    assert batch_keys(cube_from_plan(plan)), "the images must be read in batches"
    got = compute(plan)
    if resampling == "near":
        want = mucog.expected(grid, resampling)
    else:
        one_by_one = [[dataclasses.replace(s, uri=cog, subdir="")] for s, cog in zip(plan_sources(plan), mucog.cogs,
                                                                                      strict=True)]
        want = compute(dataclasses.replace(plan, images=make_plan(one_by_one, grid).images))
    assert_same(got, want)
    nodata = KINDS[mucog.kind][2]
    valid = ~np.isnan(got) if np.isnan(nodata) else got != nodata
    assert (~valid).any() and valid.mean() > 0.5


def plan_sources(plan: Any) -> list[Source]:
    return [image.sources[0] for image in plan.images]


def test_a_cube_in_another_crs_equals_the_reference(mucog: Mucog, served: str) -> None:
    x, y = TRANSFORM @ (WIDTH / 2, HEIGHT / 2)
    from pyproj import Transformer

    x, y = Transformer.from_crs(CRS, "EPSG:32632", always_xy=True).transform(x, y)
    grid = make_grid("EPSG:32632", 12.0, (x - 1800, y - 1500, x + 1800, y + 1500))
    plan = plan_for(mucog, served, grid)
    assert batch_keys(cube_from_plan(plan))
    assert_same(compute(plan), mucog.expected(grid, "near"))


def test_local_files_read_in_batches_when_asked(mucog: Mucog) -> None:
    grid = make_grid(CRS, 10.0, (TRANSFORM.c + 35, TRANSFORM.f - 3000, TRANSFORM.c + 4000, TRANSFORM.f - 45))
    plan = plan_for(mucog, str(mucog.path), grid)
    with dask.config.set({"geocube.mucog-reads": "always"}):
        assert batch_keys(cube_from_plan(plan))
        got = compute(plan)
    assert not batch_keys(cube_from_plan(plan)), "local files are read image by image by default"
    assert_same(got, mucog.expected(grid, "near"))


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (2, 2)])
def test_requests_do_not_grow_with_the_records(mucog: Mucog, served: str, http_server: Any, rows: int,
                                               cols: int) -> None:
    """A block over 8 or 16 dates — one tile, then four — costs a few requests: the file's size and its
    header, then at most one range per tile (and plane), holding that tile of every record (the
    ``mucog`` pattern keeps them side by side; with all the records, the tiles of a row follow each
    other and make one range). Read image by image, the same cube costs at least one request per date."""
    tiles = rows * cols * (KINDS[mucog.kind][1] if KINDS[mucog.kind][4] else 1)
    grid = make_grid(CRS, 10.0, tile_bounds(1, 1, rows, cols))
    counts = {}
    for count in (8, 16):
        url = f"{served}?n={count}-{rows}-{uuid.uuid4().hex}"  # a URL GDAL has not seen: nothing cached
        plan = plan_for(mucog, url, grid, count=count, chunks=BLOCK * max(rows, cols))
        http_server.stats(reset=True)
        got = compute(plan)
        counts[count] = http_server.stats()["requests"]
        assert_same(got, mucog.expected(grid, "near", count))
    assert counts[16] <= counts[8] <= 2 + tiles  # the size (HEAD), the header, the ranges
    assert counts[16] <= 2 + tiles // cols  # all records: the tiles of a row are one range
    url = f"{served}?one-by-one-{uuid.uuid4().hex}"
    http_server.stats(reset=True)
    compute(plan_for(mucog, url, grid, count=16, chunks=BLOCK * 2), **{"geocube.mucog-reads": "never"})
    assert http_server.stats()["requests"] >= 16


def test_batches_follow_the_byte_budget(mucog: Mucog, served: str, http_server: Any) -> None:
    """A budget of four records' pixels makes four batches over 16 records: four times the runs, one index."""
    dtype, bands, _, _, separate = KINDS[mucog.kind]
    grid = make_grid(CRS, 10.0, tile_bounds(1, 1))
    per_record = BLOCK * BLOCK * bands * np.dtype(dtype).itemsize
    url = f"{served}?budget-{uuid.uuid4().hex}"
    plan = plan_for(mucog, url, grid, chunks=BLOCK)
    with dask.config.set({"geocube.mucog-batch-bytes": 4 * per_record}):
        assert len(batch_keys(cube_from_plan(plan))) == 4
        http_server.stats(reset=True)
        got = compute(plan)
    assert http_server.stats()["requests"] <= 2 + 4 * (bands if separate else 1)
    assert_same(got, mucog.expected(grid, "near"))


def test_tile_index_matches_gdal(mucog: Mucog) -> None:
    """Offsets and byte counts of every tile of every record and level, as GDAL reports them."""
    index = read_tiff_index(str(mucog.path))
    assert index is not None and len(index.images) == RECORDS
    for n in (1, 7, RECORDS):
        for z, level in enumerate(index.images[n - 1]):
            kwargs = {} if z == 0 else {"overview_level": z - 1}
            with rasterio.open(f"GTIFF_DIR:{n}:{mucog.path}", **kwargs) as ds:
                assert level.shape == ds.shape and level.tile == ds.block_shapes[0]
                for plane in range(level.planes):
                    for t in range(level.tiles_per_plane):
                        row, col = divmod(t, level.tiles_across)
                        i = plane * level.tiles_per_plane + t
                        offset = ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=plane + 1)
                        size = ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=plane + 1)
                        assert (level.offsets[i], level.counts[i]) == (int(offset or 0), int(size or 0))
    assert np.array_equal(index.metadata, np.fromfile(mucog.path, np.uint8, count=index.metadata.size))


def test_a_process_reads_a_mucog_s_index_once(mucog: Mucog, served: str, http_server: Any,
                                              monkeypatch: Any, tmp_path: Path) -> None:
    """Every tile of a map over a MUCOG is a new graph: the file's header is fetched and parsed once per
    process, again after clear_caches() (a remote object may have been rewritten) or when a local file
    changed, and the least recently used indexes go beyond the budget."""
    import os
    import shutil

    from geocube_dask.graph import clear_caches, tiffindex

    clear_caches()
    parsed: list[str] = []
    real = tiffindex.read_tiff_index
    monkeypatch.setattr(tiffindex, "read_tiff_index", lambda path: parsed.append(path) or real(path))
    url = f"{served}?index-{uuid.uuid4().hex}"
    grids = [make_grid(CRS, 10.0, tile_bounds(1, 1)), make_grid(CRS, 10.0, tile_bounds(2, 2))]
    for grid in grids:  # two different requests, hence graphs
        assert_same(compute(plan_for(mucog, url, grid, chunks=BLOCK)), mucog.expected(grid, "near"))
    assert len(parsed) == 1
    http_server.stats(reset=True)
    compute(plan_for(mucog, url, grids[0], chunks=BLOCK))
    assert http_server.stats()["requests"] == 0 and len(parsed) == 1
    clear_caches()
    assert_same(compute(plan_for(mucog, url, grids[0], chunks=BLOCK)), mucog.expected(grids[0], "near"))
    assert len(parsed) == 2

    local = tmp_path / "local.tif"
    shutil.copy(mucog.path, local)
    with dask.config.set({"geocube.mucog-reads": "always"}):
        compute(plan_for(mucog, str(local), grids[0], chunks=BLOCK))
        assert len(parsed) == 3
        compute(plan_for(mucog, str(local), grids[0], chunks=BLOCK))
        assert len(parsed) == 3
        stat = local.stat()
        os.utime(local, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten in place, say
        compute(plan_for(mucog, str(local), grids[0], chunks=BLOCK))
        assert len(parsed) == 4
        monkeypatch.setattr(tiffindex, "INDEX_CACHE_BYTES", 1)  # room for the last index only
        clear_caches()
        for uri in (url, str(local), url):
            compute(plan_for(mucog, uri, grids[0], chunks=BLOCK))
        assert len(parsed) == 7
    clear_caches()


def test_a_tile_not_fetched_cannot_be_read_from_the_compact_copy(mucog: Mucog) -> None:
    """The compact copy holds only the fetched tiles; reading any other fails instead of reading other bytes."""
    index = read_tiff_index(str(mucog.path))
    level = index.level(3, (HEIGHT, WIDTH))
    window = (BLOCK, BLOCK, BLOCK, BLOCK)  # tile (1, 1)
    bands = tuple(range(1, KINDS[mucog.kind][1] + 1))
    wanted = batch.tile_numbers(level, window, bands)
    pieces = [(int(level.offsets[i]), int(level.counts[i])) for i in wanted]
    compact = batch._Compact(batch.merge_runs(pieces), index.metadata.size)
    raw = np.fromfile(mucog.path, np.uint8)
    at = compact.header
    for offset, length in compact.runs:
        compact.data[at:at + length] = raw[offset:offset + length]
        at += length
    compact.data[:compact.header] = index.metadata
    compact.point(level, wanted)
    with memory_file(f"/vsimem/test-{uuid.uuid4().hex}.tif", compact.data) as name, \
            rasterio.open(f"GTIFF_DIR:off:{index.images[2][0].ifd}:{name}") as ds, \
            rasterio.open(f"GTIFF_DIR:3:{mucog.path}") as original:
        inside = Window(BLOCK + 5, BLOCK + 7, 60, 50)
        np.testing.assert_array_equal(ds.read(window=inside), original.read(window=inside))
        with pytest.raises(rasterio.errors.RasterioIOError):
            ds.read(window=Window(2 * BLOCK, BLOCK, 10, 10))  # tile (1, 2): not fetched


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # pages without georeferencing
def test_a_tiff_whose_header_is_not_one_prefix_is_read_image_by_image(tmp_path: Path, http_server: Any) -> None:
    """tifffile writes each page's IFD after the previous page's data: not indexed, read as before."""
    import tifffile

    pages = [record_pixels("uint16", 1, 0, seed)[0] for seed in range(3)]
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for page in pages:
            tif.write(page, tile=(BLOCK, BLOCK), compression="zlib")
    assert read_tiff_index(str(path)) is None
    url = http_server.put(path, f"batch/{uuid.uuid4().hex}/pages.tif")
    grid = make_grid(CRS, 10.0, (TRANSFORM.c, TRANSFORM.f - 1500, TRANSFORM.c + 2000, TRANSFORM.f))
    sources = [Source(url, f"GTIFF_DIR:{i + 1}", (1,), DFormat("uint16", 0, 0, 10000), 0, 10000, 1, CRS,
                      tuple(TRANSFORM)[:6], WIDTH, HEIGHT) for i in range(3)]
    plan = make_plan([[s] for s in sources], grid, bands=["b1"], gdal_env=NO_LISTING)
    assert batch_keys(cube_from_plan(plan))
    got = compute(plan)
    col, row = ~TRANSFORM @ (grid.transform[2], grid.transform[5])
    want = np.stack([p[int(row):int(row) + grid.height, int(col):int(col) + grid.width] for p in pages])
    np.testing.assert_array_equal(got[:, 0], want)


def test_a_missing_mucog_raises_or_gives_nodata(mucog: Mucog, http_server: Any) -> None:
    url = http_server.url(f"batch/{uuid.uuid4().hex}/missing.tif")
    grid = make_grid(CRS, 10.0, tile_bounds(1, 1))
    with pytest.raises(SourceReadError, match="missing.tif"):
        compute(plan_for(mucog, url, grid, count=4))
    got = compute(plan_for(mucog, url, grid, count=4, on_error="nodata"))
    nodata = KINDS[mucog.kind][2]
    assert np.isnan(got).all() if np.isnan(nodata) else (got == nodata).all()


def test_a_failed_batch_is_read_image_by_image_with_a_warning(mucog: Mucog, served: str, monkeypatch: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A batch whose fetch fails (a connection reset, injected): its images are read one by one, giving the
    reference's pixels, and a warning says which file and what it costs."""
    import logging

    def reset(job: Any, index: Any) -> Any:
        raise OSError("connection reset by peer")

    monkeypatch.setattr(batch, "read_batch", reset)
    grid = make_grid(CRS, 10.0, tile_bounds(1, 1))
    plan = plan_for(mucog, served, grid)
    assert batch_keys(cube_from_plan(plan))
    with caplog.at_level(logging.WARNING, logger=batch.__name__):
        got = compute(plan)
    assert_same(got, mucog.expected(grid, "near"))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and all("connection reset" in m and "one by one" in m and served in m for m in warned)


def test_a_cube_over_a_mucog_on_s3_equals_the_reference(mucog: Mucog, s3_server: Any) -> None:
    """Through /vsis3/ with the credentials the plan carries (nothing in the environment)."""
    uri = s3_server.upload(mucog.path, f"batch-{uuid.uuid4().hex[:12]}", "cell/mucog.tif")
    grid = make_grid(CRS, 10.0, (TRANSFORM.c + 35, TRANSFORM.f - 3000, TRANSFORM.c + 4000, TRANSFORM.f - 45))
    plan = plan_for(mucog, uri, grid, gdal_env=s3_server.gdal_env())
    assert batch_keys(cube_from_plan(plan))
    with dask.config.set({"geocube.mucog-batch-bytes": 1}):  # one batch per record: any failure would show
        assert_same(compute(plan), mucog.expected(grid, "near"))


@pytest.mark.slow
def test_a_cube_over_a_served_mucog_on_a_local_cluster(tmp_path: Path, http_server: Any) -> None:
    """Worker processes read the batches with the plan's GDAL settings (here a header the server requires
    for /private/): the same pixels, and a few requests per worker, not one per date."""
    mucog = build_mucog(tmp_path, "uint16-zstd")
    from distributed import Client, LocalCluster
    from servers import PRIVATE_HEADER, PRIVATE_TOKEN

    url = http_server.put(mucog.path, f"private/{uuid.uuid4().hex}/mucog.tif")
    grid = make_grid(CRS, 10.0, tile_bounds(0, 0, 2, 4))
    header = {"GDAL_HTTP_HEADERS": f"{PRIVATE_HEADER}: {PRIVATE_TOKEN}"}
    plan = plan_for(mucog, url, grid, chunks=BLOCK * 2, gdal_env=header)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        http_server.stats(reset=True)
        got = client.compute(cube_from_plan(plan).data).result()
        requests = http_server.stats()["requests"]
    assert_same(got, mucog.expected(grid, "near"))
    assert requests <= 2 * 2 + 2 * 2  # per worker: size and header; per chunk: one run per tile row


def test_helpers() -> None:
    assert batch.merge_runs([(100, 10), (0, 50), (50, 20), (300, 5)], gap=0) == [(0, 70), (100, 10), (300, 5)]
    assert batch.merge_runs([(0, 50), (60, 10)], gap=10) == [(0, 70)]
    assert batch.batch_sizes(10, 100, 350) == [4, 3, 3]
    assert batch.batch_sizes(3, 10**9, 1) == [1, 1, 1]
    assert batch.batch_sizes(5, 1, 10**9) == [5]
    assert batch.dir_number("GTIFF_DIR:12") == 12 and batch.dir_number("NETCDF:x") is None
    with dask.config.set({"geocube.mucog-reads": "sometimes"}), pytest.raises(InvalidArgument, match="mucog-reads"):
        batch.batch_settings()


def test_a_prefetched_window_serves_reads_inside_it_and_falls_back_outside() -> None:
    data = np.arange(2 * 4 * 5).reshape(2, 4, 5)
    opened = []

    class File:
        def read(self, indexes: list[int], window: Window) -> str:
            opened.append((indexes, window))
            return "from the file"

    reader = PrefetchedReader(Prefetched((10, 20, 4, 5), (3, 1), data), 100, 100, lambda: File())
    np.testing.assert_array_equal(reader.read([1], Window(21, 11, 3, 2)), data[[1], 1:3, 1:4])
    np.testing.assert_array_equal(reader.read([3, 1], Window(20, 10, 5, 4)), data)
    assert not opened
    assert reader.read([1], Window(19, 11, 3, 2)) == "from the file"
    assert reader.read([2], Window(21, 11, 3, 2)) == "from the file"
    assert len(opened) == 2


def test_a_point_timeseries_over_a_served_mucog(mucog: Mucog, served: str, http_server: Any) -> None:
    """A 1×1 grid at a point: each record's pixel there, read from every record in one batch."""
    from geocube_dask.graph.timeseries import point_grid

    col, row = 300, 150
    grid = point_grid(TRANSFORM @ (col + 0.5, row + 0.5), CRS)
    url = f"{served}?point-{uuid.uuid4().hex}"
    plan = plan_for(mucog, url, grid, chunks=1)
    http_server.stats(reset=True)
    got = compute(plan)
    planes = KINDS[mucog.kind][1] if KINDS[mucog.kind][4] else 1
    assert http_server.stats()["requests"] <= 2 + planes  # size, header, the pixel's tile in every record
    for i, cog in enumerate(mucog.cogs):
        with rasterio.open(cog) as ds:
            np.testing.assert_array_equal(got[i, :, 0, 0], ds.read(window=Window(col, row, 1, 1))[:, 0, 0])
