"""Indexing real GeoTIFFs: headers read, records created from files, all-or-nothing, concurrency."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
from affine import Affine

import geocube_dask as gd
from geocube_dask.catalog.ingest.requests import IndexRequest, NewRecord
from geocube_dask.synthetic import write_reflectance

from .helpers import table_counts
from .workers import index_files


def write_tile(path: Path, col: int = 0, bands: int = 2) -> str:
    """A 64×64 UTM 31N COG at 20 m; ``col`` shifts it east by its own width."""
    transform = Affine(20.0, 0.0, 360000.0 + col * 1280.0, 0.0, -20.0, 4830000.0)
    write_reflectance(path, crs="EPSG:32631", transform=transform, width=64, height=64, bands=bands, seed=col)
    return str(path)


@pytest.fixture
def tiles(tmp_path: Path) -> list[str]:
    return [write_tile(tmp_path / f"tile{i}.tif", i) for i in range(3)]


@pytest.fixture
def refl(gc):
    var = gc.create_variable("refl", ("uint16", 0, 0, 10000), ["red", "nir"])
    return gc.instantiate(var, "master")


def test_index_one_file(gc, refl, record, tiles) -> None:
    ds = gc.index_dataset(tiles[0], record, refl)
    assert (ds.uri, ds.bands, ds.crs, ds.width, ds.height) == (tiles[0], (1, 2), "EPSG:32631", 64, 64)
    assert ds.dformat.dtype == "uint16" and ds.transform[0] == 20.0 and ds.overviews
    lon, lat = shapely.from_wkt(ds.footprint_4326_wkt).centroid.coords[0]
    assert 0 < lon < 2 and 43 < lat < 44
    assert gc.get_dataset(ds.id) == ds
    assert gc.index_dataset(tiles[0], record.id, refl.id) == ds  # the same thing twice: no-op


def test_index_with_new_records(gc, refl, tiles) -> None:
    calls = []
    new = NewRecord("S2_20240105", "2024-01-05T10:30:00Z", {"constellation": "S2"})
    ds = gc.index_datasets(
        [IndexRequest(uri=t, record=new, instance=refl) for t in tiles[:2]]
        + [IndexRequest(uri=tiles[2], record=NewRecord("other", "2024-01-06"), instance=refl)],
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert ds[0].record_id == ds[1].record_id != ds[2].record_id
    rec = gc.get_record(ds[0].record_id)
    assert rec.tags == {"constellation": "S2"}
    union = shapely.union(shapely.from_wkt(ds[0].footprint_4326_wkt), shapely.from_wkt(ds[1].footprint_4326_wkt))
    assert gc.get_record_aoi(rec).equals(union)
    # the same request again reuses the records and the datasets
    again = gc.index_datasets([IndexRequest(uri=tiles[0], record=new, instance=refl)])
    assert again == [ds[0]] and len(gc.list_records()) == 2


def test_new_record_with_explicit_aoi(gc, refl, tiles) -> None:
    aoi = shapely.box(1, 43, 2, 44)
    ds = gc.index_dataset(tiles[0], NewRecord("r", "2024-01-05", aoi=aoi), refl)
    assert gc.get_record_aoi(ds.record_id).equals(aoi)


def test_indexing_is_all_or_nothing(gc, refl, record, tiles, tmp_path: Path) -> None:
    before = table_counts(gc)
    missing = str(tmp_path / "missing.tif")
    with pytest.raises(gd.UnreadableFile):
        gc.index_datasets([IndexRequest(uri=tiles[0], record=NewRecord("n", "2024-01-01"), instance=refl),
                           IndexRequest(uri=missing, record=record, instance=refl)])
    with pytest.raises(gd.IncompatibleDataset):
        gc.index_datasets([IndexRequest(uri=tiles[0], record=record, instance=refl),
                           IndexRequest(uri=tiles[1], record=record, instance=refl, bands=(1, 7))])
    assert table_counts(gc) == before


def test_bad_exponent_is_refused_before_reading(gc, refl, record, tmp_path: Path) -> None:
    for exponent in (0, -1.0, float("nan"), "2"):
        with pytest.raises(gd.InvalidArgument, match="exponent"):
            gc.index_dataset(str(tmp_path / "never-read.tif"), record, refl, exponent=exponent)


def test_bad_references(gc, refl, record, tiles) -> None:
    with pytest.raises(gd.NotFound):
        gc.index_dataset(tiles[0], record, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(gd.NotFound):
        gc.index_dataset(tiles[0], "00000000-0000-0000-0000-000000000000", refl)
    with pytest.raises(gd.InvalidArgument):
        gc.index_datasets([("uri", record, refl)])
    with pytest.raises(gd.InvalidName):
        gc.index_dataset(tiles[0], NewRecord("bad name", "2024-01-01"), refl)
    with pytest.raises(gd.InvalidArgument, match="bands"):
        gc.index_dataset(tiles[0], record, refl, bands=1)


def test_overlapping_bands_of_the_same_file(gc, refl, record, tiles, make_record) -> None:
    first = gc.index_dataset(tiles[0], record, refl)
    with pytest.raises(gd.IncompatibleDataset, match=f"dataset {first.id}"):
        gc.index_dataset(tiles[0], make_record(), refl)


@pytest.mark.local_only("spawned writer processes opening the catalogue's database themselves")
def test_two_processes_index_the_same_files(gc, catalog_url, refl, tmp_path: Path, spawn_pool) -> None:
    paths = [write_tile(tmp_path / f"c{i}.tif", i) for i in range(6)]
    pool, manager = spawn_pool
    barrier = manager.Barrier(2)
    jobs = [pool.apply_async(index_files, (catalog_url, barrier, refl.id, paths)) for _ in range(2)]
    a, b = (job.get(timeout=120) for job in jobs)
    assert a == b
    assert sorted(d.uri for d in gc.list_datasets()) == sorted(paths)
    assert len(gc.list_records()) == 6


def test_files_across_the_antimeridian_and_over_the_pole(gc, tmp_path: Path) -> None:
    var = gc.create_variable("one", ("uint16", 0, 0, 10000), [""])
    inst = gc.instantiate(var, "master")
    utm60 = tmp_path / "utm60.tif"  # UTM 60N, 800..900 km east: crosses 180°
    write_reflectance(utm60, crs="EPSG:32660", transform=Affine(500.0, 0.0, 800000.0, 0.0, -500.0, 100000.0),
                      width=200, height=200, bands=1)
    pole = tmp_path / "pole.tif"  # north polar stereographic around the pole
    write_reflectance(pole, crs="EPSG:3413", transform=Affine(5000.0, 0.0, -500000.0, 0.0, -5000.0, 500000.0),
                      width=200, height=200, bands=1)
    gc.index_datasets([IndexRequest(uri=str(p), record=NewRecord(p.stem, "2024-01-01"), instance=inst)
                       for p in (utm60, pole)])

    def found(point: shapely.Point) -> list[str]:
        return [Path(d.uri).stem for _, d in gc.find_datasets(inst, aoi=point)]

    assert found(shapely.Point(179.9, 0.5)) == found(shapely.Point(-179.95, 0.5)) == ["utm60"]
    assert found(shapely.Point(0, 0.5)) == []
    assert found(shapely.Point(-170, 89.9)) == found(shapely.Point(10, 89.9)) == ["pole"]
    assert [r.name for r in gc.list_records(aoi=shapely.Point(-179.95, 0.5))] == ["utm60"]
