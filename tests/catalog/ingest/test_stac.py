"""STAC Items → index requests: names, tags, AOIs, hrefs, raster:bands scale/offset — on real generated COGs."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pystac
import pytest
import shapely
from rasters import SCENES, write_scene
from shapely.geometry import Polygon, mapping

from geocube_dask.catalog.ingest.fileinfo import read_file_info
from geocube_dask.catalog.ingest.requests import IndexRequest, NewRecord, prepare_dataset
from geocube_dask.catalog.ingest.stac import StacMixin, record_name, stac_index_requests
from geocube_dask.entities import DFormat, Instance, Variable, check_name
from geocube_dask.errors import IncompatibleDataset, InvalidArgument, InvalidName

REFLECTANCE = Variable("var-refl", "reflectance", DFormat("float32", math.nan, 0.0, 1.0), ("red",))
TEMPERATURE = Variable("var-temp", "temperature", DFormat("float32", math.nan, 200.0, 330.0), ("t",))
REFL = Instance("inst-refl", REFLECTANCE.id, "master")
TEMP = Instance("inst-temp", TEMPERATURE.id, "master")
VARIABLES = {REFL.id: REFLECTANCE, TEMP.id: TEMPERATURE}


def footprint_geojson(path: Path) -> dict:
    return mapping(shapely.from_wkt(read_file_info(str(path)).footprint_4326_wkt))


def make_item(
    item_id: str,
    assets: dict[str, pystac.Asset],
    *,
    geometry: dict | None = None,
    when: datetime | None = datetime(2024, 1, 5, 10, 30, tzinfo=UTC),
    properties: dict | None = None,
    collection: str | None = "sentinel-2-l2a",
) -> pystac.Item:
    props = dict(properties or {})
    if when is None:
        props.setdefault("start_datetime", "2024-01-05T10:00:00Z")
        props.setdefault("end_datetime", "2024-01-05T11:00:00Z")
    item = pystac.Item(item_id, geometry, list(shapely.geometry.shape(geometry).bounds) if geometry else None,
                       when, props, collection=collection)
    for key, asset in assets.items():
        item.add_asset(key, asset)
    return item


def raster_asset(href: str, **band: object) -> pystac.Asset:
    asset = pystac.Asset(href, media_type=pystac.MediaType.COG)
    if band:
        asset.extra_fields["raster:bands"] = [dict(band)]
    return asset


@pytest.fixture
def s2_files(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "data"
    return {
        "B04": write_scene(data / "B04.tif", "utm31", bands=1),
        "TCI": write_scene(data / "TCI.tif", "utm31", bands=3, dtype="uint8", nodata=0),
        "LST": write_scene(data / "LST.tif", "l93", bands=1, dtype="float32", nodata=float("nan")),
    }


# --- records ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_id", "name"),
    [
        ("S2A_MSIL2A_20240105T103331_R108_T31TCJ", "S2A_MSIL2A_20240105T103331_R108_T31TCJ"),
        ("S2A_MSIL2A_20240105T103331_N0510.SAFE", "S2A_MSIL2A_20240105T103331_N0510_SAFE"),
        ("LC08 L2SP/198030 2024-01-05", "LC08_L2SP_198030_2024-01-05"),
        ("urn:eop:S2:1", "urn:eop:S2:1"),
    ],
)
def test_record_names(item_id: str, name: str) -> None:
    assert record_name(item_id) == name
    assert check_name(name) == name


def test_empty_id_is_refused() -> None:
    with pytest.raises(InvalidName):
        record_name("")


def test_item_to_record_and_request(s2_files: dict[str, Path]) -> None:
    geometry = footprint_geojson(s2_files["B04"])
    item = make_item(
        "S2A_31TCJ_20240105_0_L2A.SAFE",
        {"B04": raster_asset(str(s2_files["B04"]), data_type="uint16", nodata=0, scale=0.0001, offset=-0.1)},
        geometry=geometry,
        properties={
            "platform": "sentinel-2a", "eo:cloud_cover": 12.5, "s2:tile": 31, "instruments": ["msi"],
            "view": {"azimuth": 1}, "sat:relative_orbit": None, "is*odd?": "a*b?c", "ok": True,
            "created": "2024-01-06T00:00:00Z", "updated": "2024-01-07T00:00:00Z",
        },
    )
    (req,) = stac_index_requests(item, {"B04": REFL})
    assert isinstance(req, IndexRequest) and isinstance(req.record, NewRecord)
    rec = req.record
    assert rec.name == "S2A_31TCJ_20240105_0_L2A_SAFE"
    assert rec.datetime == datetime(2024, 1, 5, 10, 30, tzinfo=UTC)
    assert rec.tags == {
        "collection": "sentinel-2-l2a", "platform": "sentinel-2a", "eo:cloud_cover": "12.5", "s2:tile": "31",
        "instruments": '["msi"]', "view": '{"azimuth":1}', "isodd": "abc", "ok": "true",
    }
    assert rec.aoi.equals(shapely.geometry.shape(geometry))
    assert req.uri == str(s2_files["B04"]) and req.instance is REFL and req.bands is None
    assert req.dformat == DFormat("uint16", 0.0, 0.0, 65535.0)
    assert req.real_min == pytest.approx(-0.1) and req.real_max == pytest.approx(65535 * 0.0001 - 0.1)
    assert (req.exponent, req.subdir) == (1.0, "")
    assert not stac_index_requests(item, {"B04": REFL}, tags_from_properties=False)[0].record.tags


def test_scale_offset_mapping_is_what_the_file_means(s2_files: dict[str, Path]) -> None:
    """The request, validated against the real file, maps a stored value v to v * scale + offset."""
    item = make_item("t1", {"B04": raster_asset(str(s2_files["B04"]), data_type="uint16", nodata=0,
                                                 scale=0.0001, offset=-0.1)})
    (req,) = stac_index_requests(item, {"B04": REFL})
    ds = prepare_dataset(read_file_info(req.uri), REFLECTANCE, req.bands, req.dformat, req.real_min, req.real_max,
                         req.exponent)
    for stored in (1, 1000, 4321, 10000):
        t = (stored - ds.dformat.min) / (ds.dformat.max - ds.dformat.min)
        value = ds.real_min + (ds.real_max - ds.real_min) * t
        assert value == pytest.approx(stored * 0.0001 - 0.1, abs=1e-12)


def test_negative_scale(s2_files: dict[str, Path]) -> None:
    item = make_item("neg", {"B04": raster_asset(str(s2_files["B04"]), data_type="uint16", scale=-0.01, offset=300)})
    (req,) = stac_index_requests(item, {"B04": TEMP})
    assert req.dformat == DFormat("uint16", None, 0.0, 65535.0)  # no nodata given: no nodata
    assert (req.real_min, req.real_max) == (300.0, pytest.approx(300 - 655.35))
    assert req.real_min > req.real_max
    ds = prepare_dataset(read_file_info(req.uri), TEMPERATURE, req.bands, req.dformat, req.real_min, req.real_max)
    t = (5000 - ds.dformat.min) / (ds.dformat.max - ds.dformat.min)
    assert ds.real_min + (ds.real_max - ds.real_min) * t == pytest.approx(250.0)


def test_float_assets(s2_files: dict[str, Path]) -> None:
    lst = str(s2_files["LST"])
    scaled = make_item("f1", {"LST": raster_asset(lst, data_type="float32", nodata="nan", scale=0.5, offset=10)})
    # the variable known: the internal range is what maps onto the variable's range
    (req,) = stac_index_requests(scaled, {"LST": TEMP}, variables=VARIABLES)
    assert req.dformat.dtype == "float32" and req.dformat.nodata_is_nan
    assert (req.dformat.min, req.dformat.max) == (380.0, 640.0)
    assert (req.real_min, req.real_max) == (200.0, 330.0)
    prepare_dataset(read_file_info(lst), TEMPERATURE, req.bands, req.dformat, req.real_min, req.real_max)
    # unknown variable: [0, 1] (still exact), or nothing at all without scale/offset and nodata
    (req,) = stac_index_requests(scaled, {"LST": TEMP})
    assert (req.dformat.min, req.dformat.max, req.real_min, req.real_max) == (0.0, 1.0, 10.0, 10.5)
    plain = make_item("f2", {"LST": raster_asset(lst, data_type="float32")})
    (req,) = stac_index_requests(plain, {"LST": TEMP})
    assert (req.dformat, req.real_min, req.real_max) == (None, None, None)
    (req,) = stac_index_requests(plain, {"LST": TEMP}, variables=lambda instance_id: VARIABLES[instance_id])
    assert (req.dformat.min, req.dformat.max, req.real_min, req.real_max) == (200.0, 330.0, 200.0, 330.0)


def test_stac_1_1_bands_and_asset_level_fields(s2_files: dict[str, Path]) -> None:
    tci = str(s2_files["TCI"])
    asset = pystac.Asset(tci, extra_fields={
        "data_type": "uint8", "nodata": 0,
        "bands": [{"name": "red", "raster:scale": 2.0}, {"name": "green", "raster:scale": 2.0},
                  {"name": "blue", "raster:scale": 3.0}],
    })
    item = make_item("tci", {"visual": asset})
    (req,) = stac_index_requests(item, {"visual": (REFL, [2])})
    assert req.bands == (2,) and req.dformat == DFormat("uint8", 0.0, 0.0, 255.0)
    assert (req.real_min, req.real_max) == (0.0, 510.0)
    with pytest.raises(IncompatibleDataset, match=r"bands \[2, 3\] have different"):
        stac_index_requests(item, {"visual": (REFL, [2, 3])})
    # by default, as many bands as the variable has
    (req,) = stac_index_requests(item, {"visual": REFL}, variables=VARIABLES)
    assert req.bands is None and req.real_max == 510.0


def test_assets_without_raster_metadata_and_several_assets(s2_files: dict[str, Path]) -> None:
    item = make_item("two", {"B04": raster_asset(str(s2_files["B04"])), "TCI": raster_asset(str(s2_files["TCI"]))})
    b04, tci = stac_index_requests(item, {"B04": "inst-a", "TCI": ("inst-b", (1, 2, 3))})
    assert b04.record is tci.record  # one record per item
    assert (b04.dformat, b04.real_min, b04.real_max, b04.instance) == (None, None, None, "inst-a")
    assert (tci.bands, tci.instance) == ((1, 2, 3), "inst-b")
    same = stac_index_requests(item, ["B04", "TCI"], instance="inst-c")
    assert [r.instance for r in same] == ["inst-c", "inst-c"]


def test_datetime_and_geometry_fallbacks(s2_files: dict[str, Path]) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[1, 43], [2, 44], [2, 43], [1, 44], [1, 43]]]}
    item = make_item("range", {"B04": raster_asset(str(s2_files["B04"]))}, when=None, geometry=bowtie)
    (req,) = stac_index_requests(item, {"B04": REFL})
    assert req.record.datetime == datetime(2024, 1, 5, 10, 0, tzinfo=UTC)
    assert req.record.aoi.is_valid and req.record.aoi.area == pytest.approx(0.5)
    assert "start_datetime" in req.record.tags and "datetime" not in req.record.tags
    point = make_item("pt", {"B04": raster_asset(str(s2_files["B04"]))}, geometry={"type": "Point",
                                                                                   "coordinates": [1, 43]})
    assert stac_index_requests(point, {"B04": REFL})[0].record.aoi is None  # the file footprint will be used
    item = make_item("nodate", {"B04": raster_asset(str(s2_files["B04"]))}, when=None)
    item.properties.pop("start_datetime")
    item.common_metadata.start_datetime = None
    with pytest.raises(InvalidArgument, match="neither datetime nor start_datetime"):
        stac_index_requests(item, {"B04": REFL})


# --- hrefs and inputs ---------------------------------------------------------------------------------------


def test_relative_hrefs_resolve_against_the_self_link(tmp_path: Path, s2_files: dict[str, Path]) -> None:
    item = make_item("rel", {"B04": raster_asset("../data/B04.tif", data_type="uint16", nodata=0)})
    with pytest.raises(InvalidArgument, match="relative href.*self link"):
        stac_index_requests(item, {"B04": REFL})
    item.set_self_href(str(tmp_path / "items" / "rel.json"))
    (req,) = stac_index_requests(item, {"B04": REFL})
    assert req.uri == str(s2_files["B04"])
    assert read_file_info(req.uri).width == SCENES["utm31"].width


def test_item_and_collection_files(tmp_path: Path, s2_files: dict[str, Path]) -> None:
    first = make_item("a", {"B04": raster_asset("data/B04.tif")})
    second = make_item("b", {"B04": raster_asset("./data/B04.tif")}, when=datetime(2024, 2, 1, tzinfo=UTC))
    collection_file = tmp_path / "collection.json"
    collection_file.write_text(json.dumps(pystac.ItemCollection([first, second]).to_dict(transform_hrefs=False)))
    from_file = stac_index_requests(str(collection_file), {"B04": REFL})
    assert [r.record.name for r in from_file] == ["a", "b"]
    assert {r.uri for r in from_file} == {str(s2_files["B04"])}
    with pytest.raises(InvalidArgument, match="relative href"):  # a bare dict has no location to resolve against
        stac_index_requests(json.loads(collection_file.read_text()), {"B04": REFL})
    absolute = pystac.ItemCollection([make_item("c", {"B04": raster_asset(str(s2_files["B04"]))})])
    assert len(stac_index_requests(absolute.to_dict(), {"B04": REFL})) == 1
    assert len(stac_index_requests(absolute, {"B04": REFL})) == 1
    item_file = tmp_path / "items" / "one.json"
    item_file.parent.mkdir()
    item_file.write_text(json.dumps(make_item("one", {"B04": raster_asset("../data/B04.tif")}).to_dict(
        include_self_link=False, transform_hrefs=False)))
    (req,) = stac_index_requests(item_file, {"B04": REFL})
    assert req.uri == str(s2_files["B04"])
    first.set_self_href(str(tmp_path / "a.json"))
    listed = stac_index_requests([first, absolute.items[0].to_dict()], ["B04"], instance=REFL)
    assert [r.uri for r in listed] == [str(s2_files["B04"])] * 2


def test_collection_over_http(tmp_path: Path, http_server) -> None:
    folder = uuid.uuid4().hex
    base = http_server.directory / folder
    write_scene(base / "data" / "B04.tif", "utm32", bands=1)
    item = make_item("remote", {"B04": raster_asset("data/B04.tif", data_type="uint16", nodata=0)})
    (base / "items.json").write_text(json.dumps(pystac.ItemCollection([item]).to_dict(transform_hrefs=False)))
    (req,) = stac_index_requests(http_server.url(f"{folder}/items.json"), {"B04": REFL})
    assert req.uri == http_server.url(f"{folder}/data/B04.tif")
    info = read_file_info(req.uri)
    assert info.crs == "EPSG:32632"
    prepare_dataset(info, REFLECTANCE, req.bands, req.dformat, req.real_min, req.real_max)


def test_refusals(tmp_path: Path, s2_files: dict[str, Path]) -> None:
    item = make_item("x", {"B04": raster_asset(str(s2_files["B04"]))})
    with pytest.raises(InvalidArgument, match="no asset 'B08'.*B04"):
        stac_index_requests(item, {"B08": REFL})
    with pytest.raises(InvalidArgument, match="no instance"):
        stac_index_requests(item, ["B04"])
    with pytest.raises(InvalidArgument, match="no asset chosen"):
        stac_index_requests(item, {})
    with pytest.raises(InvalidArgument, match="1-based integers"):
        stac_index_requests(item, {"B04": (REFL, ["1"])})
    with pytest.raises(InvalidArgument, match="cannot read STAC JSON"):
        stac_index_requests(str(tmp_path / "missing.json"), {"B04": REFL})
    with pytest.raises(InvalidArgument, match="Catalog"):
        stac_index_requests({"type": "Catalog", "id": "c"}, {"B04": REFL})
    with pytest.raises(InvalidArgument, match="cannot read STAC items"):
        stac_index_requests(42, {"B04": REFL})
    no_type = make_item("s", {"B04": raster_asset(str(s2_files["B04"]), scale=0.1)})
    with pytest.raises(IncompatibleDataset, match="no data_type"):
        stac_index_requests(no_type, {"B04": REFL})
    for band, message in (({"data_type": "cint16"}, "cannot be indexed"), ({"data_type": "uint16", "scale": 0},
                          "scale of 0"), ({"data_type": "uint16", "nodata": "inf"}, "nodata"),
                          ({"data_type": "uint8", "nodata": 300}, "no valid dformat")):
        bad = make_item("b", {"B04": raster_asset(str(s2_files["B04"]), **band)})
        with pytest.raises(IncompatibleDataset, match=message):
            stac_index_requests(bad, {"B04": REFL})


# --- the mixin ---------------------------------------------------------------------------------------------


class FileCatalog(StacMixin):
    """The smallest catalogue host for the mixin: it knows two instances and "indexes" by validating files."""

    def get_instance(self, instance: Instance | str) -> Instance:
        key = instance.id if isinstance(instance, Instance) else instance
        return {REFL.id: REFL, TEMP.id: TEMP}[key]

    def get_variable(self, variable_id: str) -> Variable:
        return {REFLECTANCE.id: REFLECTANCE, TEMPERATURE.id: TEMPERATURE}[variable_id]

    def index_datasets(self, requests: list[IndexRequest], progress=None) -> list:
        out = []
        for req in requests:
            inst = self.get_instance(req.instance)
            out.append(prepare_dataset(read_file_info(req.uri, req.subdir), self.get_variable(inst.variable_id),
                                       req.bands, req.dformat, req.real_min, req.real_max, req.exponent))
            if progress is not None:
                progress(len(out), len(requests))
        return out


def test_mixin_indexes_through_index_datasets(s2_files: dict[str, Path]) -> None:
    items = [
        make_item("m1", {"LST": raster_asset(str(s2_files["LST"]), data_type="float32", scale=0.5, offset=10)}),
        make_item("m2", {"LST": raster_asset(str(s2_files["LST"]))}),
    ]
    seen: list[tuple[int, int]] = []
    datasets = FileCatalog().index_stac(items, {"LST": "inst-temp"}, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 2), (2, 2)]
    scaled, plain = datasets
    assert (scaled.real_min, scaled.real_max) == (200.0, 330.0)  # float asset mapped onto its variable's range
    assert (scaled.dformat.min, scaled.dformat.max) == (380.0, 640.0)
    assert plain.dformat.nodata_is_nan and (plain.dformat.min, plain.dformat.max) == (200.0, 330.0)
    assert Polygon(shapely.from_wkt(plain.footprint_4326_wkt).exterior).is_valid


def test_index_stac_into_the_catalogue(gc, s2_files: dict[str, Path]) -> None:
    """Through the real catalogue: one record per item, its tags and AOI, one dataset per asset."""
    var = gc.create_variable("reflectance", dformat=("float32", "nan", 0, 1), bands=["red"])
    inst = gc.instantiate(var, "master")
    files = {day: write_scene(s2_files["B04"].parent / f"B04_{day}.tif", "utm31", bands=1, seed=day) for day in (5, 6)}
    items = [
        make_item(f"S2A_T31TCJ_2024010{day}.SAFE", {"B04": raster_asset(str(files[day]), data_type="uint16",
                                                                        nodata=0, scale=0.0001, offset=-0.1)},
                  when=datetime(2024, 1, day, 10, 30, tzinfo=UTC), properties={"platform": "sentinel-2a"},
                  geometry=footprint_geojson(s2_files["B04"]) if day == 5 else None)
        for day in (5, 6)
    ]
    index_stac = gc.index_stac if isinstance(gc, StacMixin) else lambda *a, **k: StacMixin.index_stac(gc, *a, **k)
    datasets = index_stac(pystac.ItemCollection(items), {"B04": inst})
    assert len(datasets) == 2
    records = gc.list_records(tags={"collection": "sentinel-2-l2a"})
    assert [r.name for r in records] == ["S2A_T31TCJ_20240105_SAFE", "S2A_T31TCJ_20240106_SAFE"]
    assert records[0].tags == {"collection": "sentinel-2-l2a", "platform": "sentinel-2a"}
    first = datasets[0]
    assert first.dformat == DFormat("uint16", 0.0, 0.0, 65535.0)
    assert first.real_min == pytest.approx(-0.1) and first.real_max == pytest.approx(6.4535)
    assert first.uri == str(files[5]) and first.crs == "EPSG:32631"
    # the item without geometry got the file footprint as its AOI, the other its own geometry
    for record in records:
        assert gc.get_record_aoi(record).equals(shapely.from_wkt(first.footprint_4326_wkt))
    again = index_stac(items, {"B04": inst})  # indexing the same items again is a no-op
    assert [d.id for d in again] == [d.id for d in datasets]
