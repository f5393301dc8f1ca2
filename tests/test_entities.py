"""Value types of ``geocube_dask.entities``: validation rules, parsing, JSON round trip, small helpers."""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import shapely

from geocube_dask.entities import (
    DTYPES,
    RESAMPLINGS,
    Cell,
    Container,
    Dataset,
    DatasetStatus,
    DFormat,
    Grid,
    Instance,
    Layout,
    Palette,
    PalettePoint,
    Record,
    Variable,
    check_name,
    check_resampling,
    dtype_range,
    new_id,
    utc_datetime,
)
from geocube_dask.errors import GeocubeError, InvalidArgument, InvalidDFormat, InvalidName

# --- DFormat: construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "nodata", "vmin", "vmax"),
    [
        ("uint8", 0, 0, 255),  # the whole dtype range
        ("uint8", 255, 1, 254),
        ("int8", -128, -128, 127),
        ("uint16", 0, 0, 10000),
        ("int16", -32768, -10000, 10000),
        ("uint32", 4294967295, 0, 4294967294),
        ("int32", -2147483648, -2147483647, 2147483647),
        ("float32", math.nan, 0.0, 1.0),
        ("float32", -3.4028234663852886e38, -1.0, 3.4028234663852886e38),
        ("float64", -9999.5, -1e300, 1e300),
        ("float64", None, 0.0, 1.0),  # no nodata: allowed for a dataset's internal format
        ("uint16", None, 0, 65535),
    ],
)
def test_valid_dformats_are_kept_as_floats(dtype: str, nodata: float | None, vmin: float, vmax: float) -> None:
    fmt = DFormat(dtype, nodata, vmin, vmax)
    assert fmt.dtype == dtype
    assert type(fmt.min) is float and fmt.min == vmin
    assert type(fmt.max) is float and fmt.max == vmax
    if nodata is None:
        assert fmt.nodata is None
    else:
        assert type(fmt.nodata) is float
        assert math.isnan(fmt.nodata) if math.isnan(nodata) else fmt.nodata == nodata


def test_numpy_scalars_become_python_floats() -> None:
    fmt = DFormat("uint16", np.uint16(7), np.int64(1), np.float32(900.0))
    assert (fmt.nodata, fmt.min, fmt.max) == (7.0, 1.0, 900.0)
    assert all(type(v) is float for v in (fmt.nodata, fmt.min, fmt.max))


INVALID_DFORMATS = [
    # (dtype, nodata, min, max), phrase expected in the message
    (("uint8", 0, 10, 10), "must be smaller than max"),
    (("float32", math.nan, 1.0, 0.5), "must be smaller than max"),
    (("uint8", 0, 0, 256), "max=256.0 is outside the range of uint8"),
    (("uint8", 0, -1, 10), "min=-1.0 is outside the range of uint8"),
    (("int8", 0, -129, 0), "outside the range of int8"),
    (("int16", 0, 0, 40000), "outside the range of int16"),
    (("float32", math.nan, 0, 1e39), "outside the range of float32"),
    (("int8", 200, 0, 100), "nodata 200.0 is outside the range of int8"),
    (("uint16", -1, 0, 100), "nodata -1.0 is outside the range of uint16"),
    (("uint32", 2.0**32, 0, 1), "nodata 4294967296.0 is outside the range of uint32"),
    (("float32", 1e39, 0, 1), "nodata 1e+39 is outside the range of float32"),
    (("float32", math.inf, 0, 1), "outside the range of float32"),
    (("uint8", math.nan, 0, 100), "nodata NaN is impossible in uint8"),
    (("int32", math.nan, 0, 100), "give an integer nodata"),
    (("uint8", 0.5, 0, 100), "nodata 0.5 is not an integer, as uint8 requires"),
    (("int16", -1.25, 0, 100), "not an integer"),
    (("complex64", 0, 0, 1), "unknown dtype 'complex64'"),
    (("int64", 0, 0, 1), "unknown dtype 'int64': choose one of uint8"),
    (("float16", 0, 0, 1), "unknown dtype"),
    (("uint8", 0, math.nan, 1), "min must be a finite number"),
    (("float64", 0, 0, math.inf), "max must be a finite number"),
    (("float64", 0, -math.inf, 0), "min must be a finite number"),
    (("uint8", 0, "0", 1), "min must be a finite number"),
    (("uint8", 0, 0, True), "max must be a finite number"),
]


@pytest.mark.parametrize(("args", "phrase"), INVALID_DFORMATS, ids=[repr(a) for a, _ in INVALID_DFORMATS])
def test_invalid_dformats_raise_invalid_dformat(args: tuple[Any, ...], phrase: str) -> None:
    with pytest.raises(InvalidDFormat) as info:
        DFormat(*args)
    assert phrase in str(info.value)


def test_the_unknown_dtype_message_lists_the_choices() -> None:
    with pytest.raises(InvalidDFormat) as info:
        DFormat("bool", 0, 0, 1)
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"):
        assert name in str(info.value)


@pytest.mark.parametrize("nodata", ["0", [0], True, np.bool_(False)])
def test_a_non_numeric_nodata_raises_invalid_dformat(nodata: Any) -> None:
    # the module promises a GeocubeError subclass on construction; min/max already get one
    with pytest.raises(InvalidDFormat, match="nodata"):
        DFormat("uint8", nodata, 0, 255)


# --- DFormat: properties, parse, JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "is_float", "nodata_is_nan"),
    [
        (DFormat("float32", math.nan, 0, 1), True, True),
        (DFormat("float64", -1, 0, 1), True, False),
        (DFormat("float64", None, 0, 1), True, False),
        (DFormat("uint16", 0, 0, 1), False, False),
        (DFormat("int8", None, 0, 1), False, False),
    ],
)
def test_is_float_and_nodata_is_nan(fmt: DFormat, is_float: bool, nodata_is_nan: bool) -> None:
    assert fmt.is_float is is_float
    assert fmt.nodata_is_nan is nodata_is_nan


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (("uint16", 0, 0, 10000), ("uint16", 0.0, 0.0, 10000.0)),
        (["int16", "-1", "-100", "100.5"], ("int16", -1.0, -100.0, 100.5)),
        ((np.dtype("uint8"), 255, 0, 254), ("uint8", 255.0, 0.0, 254.0)),
        ((np.float32, "NaN", 0, 1), ("float32", math.nan, 0.0, 1.0)),
        (("float64", " nan ", -1, 1), ("float64", math.nan, -1.0, 1.0)),
        ({"dtype": "int32", "nodata": -9, "min": 0, "max": 9}, ("int32", -9.0, 0.0, 9.0)),
        ({"dtype": "float32", "nodata": "nan", "min": "0", "max": "2"}, ("float32", math.nan, 0.0, 2.0)),
    ],
)
def test_parse(value: Any, expected: tuple[str, float, float, float]) -> None:
    fmt = DFormat.parse(value)
    assert (fmt.dtype, fmt.min, fmt.max) == (expected[0], expected[2], expected[3])
    assert fmt.nodata is not None
    assert math.isnan(fmt.nodata) if math.isnan(expected[1]) else fmt.nodata == expected[1]


def test_parse_passes_a_dformat_through() -> None:
    fmt = DFormat("uint8", 0, 0, 255)
    assert DFormat.parse(fmt) is fmt


def test_parse_without_nodata() -> None:
    fmt = DFormat.parse({"dtype": "uint16", "min": 0, "max": 65535}, nodata_required=False)
    assert fmt == DFormat("uint16", None, 0.0, 65535.0)
    assert DFormat.parse(("float32", None, 0, 1), nodata_required=False).nodata is None


INVALID_PARSE = [
    (("float32", None, 0, 1), "needs a nodata value"),
    ({"dtype": "uint16", "min": 0, "max": 1}, "needs a nodata value"),
    (DFormat("uint16", None, 0, 1), "needs a nodata value"),
    ({"dtype": "uint8", "nodata": 0, "min": 0}, "lacks 'max'"),
    ({"nodata": 0, "min": 0, "max": 1}, "lacks 'dtype'"),
    (("uint8", 0, 0), "must be (dtype, nodata, min, max)"),
    (("uint8", 0, 0, 1, 2), "must be (dtype, nodata, min, max)"),
    ("uint8", "must be (dtype, nodata, min, max)"),
    (42, "must be (dtype, nodata, min, max)"),
    (("uint8", "zero", 0, 1), "nodata must be a number"),
    (("uint8", 0, None, 1), "min must be a number"),
    (("uint8", 0, 0, "ten"), "max must be a number"),
    (("uint8", True, 0, 1), "nodata must be a number, not True"),
    (("uint8", 0, 0, 300), "outside the range of uint8"),
    (("uint8", "nan", 0, 1), "NaN is impossible"),
    (("<u2", 0, 0, 1), "unknown dtype"),
    (("no-such-type", 0, 0, 1), "unknown dtype 'no-such-type'"),
]


@pytest.mark.parametrize(("value", "phrase"), INVALID_PARSE, ids=[repr(v) for v, _ in INVALID_PARSE])
def test_invalid_parse_inputs_raise_invalid_dformat(value: Any, phrase: str) -> None:
    with pytest.raises(InvalidDFormat) as info:
        DFormat.parse(value)
    assert phrase in str(info.value)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (DFormat("uint16", 0, 0, 10000), {"dtype": "uint16", "nodata": 0.0, "min": 0.0, "max": 10000.0}),
        (DFormat("float32", math.nan, -1, 1), {"dtype": "float32", "nodata": "nan", "min": -1.0, "max": 1.0}),
        (DFormat("int16", None, -5, 5), {"dtype": "int16", "nodata": None, "min": -5.0, "max": 5.0}),
    ],
)
def test_to_json_is_strict_json_and_parses_back(fmt: DFormat, expected: dict[str, Any]) -> None:
    data = fmt.to_json()
    assert data == expected
    text = json.dumps(data, allow_nan=False)  # NaN is written as the string "nan", valid JSON
    back = DFormat.parse(json.loads(text), nodata_required=False)
    assert (back.dtype, back.min, back.max) == (fmt.dtype, fmt.min, fmt.max)
    if fmt.nodata is None:
        assert back.nodata is None
    elif math.isnan(fmt.nodata):
        assert back.nodata is not None and math.isnan(back.nodata)
    else:
        assert back.nodata == fmt.nodata


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("uint8", (0.0, 255.0)),
        ("int8", (-128.0, 127.0)),
        ("uint16", (0.0, 65535.0)),
        ("int16", (-32768.0, 32767.0)),
        ("uint32", (0.0, 4294967295.0)),
        ("int32", (-2147483648.0, 2147483647.0)),
        ("float32", (-3.4028234663852886e38, 3.4028234663852886e38)),
        ("float64", (-1.7976931348623157e308, 1.7976931348623157e308)),
    ],
)
def test_dtype_range(dtype: str, expected: tuple[float, float]) -> None:
    assert dtype_range(dtype) == expected


def test_dtypes_are_the_eight_raster_types() -> None:
    assert set(DTYPES) == {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}


# --- names, resamplings, datetimes, ids ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "S2A_MSIL2A", "urn:eop:S2:1", "landsat/L8/band-4", "x_1:2-3/y", "0"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a b", " a", "a/", "/a", "a//b", "a.b", "été", "a*", "a\tb", "tab\t", None, 12, b"bytes", ["a"]],
)
def test_invalid_names_raise_invalid_name(name: Any) -> None:
    with pytest.raises(InvalidName) as info:
        check_name(name, "variable name")
    message = str(info.value)
    assert message.startswith(f"invalid variable name {name!r}")
    assert "letters, digits, '-', ':', '_' and '/' between parts" in message


@pytest.mark.parametrize(("name", "allow_slash"), [("a\n", True), ("a/b\n", True), ("S2A\n", False)])
def test_a_trailing_newline_is_not_a_valid_name(name: str, allow_slash: bool) -> None:
    # NAME_RE and INSTANCE_NAME_RE end with ``$``, which re.match lets match just before a final "\n"
    with pytest.raises(InvalidName):
        check_name(name, allow_slash=allow_slash)


def test_names_without_slash() -> None:
    assert check_name("urn:a_b-c", allow_slash=False) == "urn:a_b-c"
    with pytest.raises(InvalidName) as info:
        check_name("a/b", "instance name", allow_slash=False)
    assert "invalid instance name 'a/b'" in str(info.value)
    assert "'/'" not in str(info.value).split(":", 1)[1]  # the rule told does not offer '/'


@pytest.mark.parametrize("name", RESAMPLINGS)
def test_every_resampling_is_accepted(name: str) -> None:
    assert check_resampling(name) == name


def test_nearest_is_near() -> None:
    assert check_resampling("nearest") == "near"


@pytest.mark.parametrize("name", ["magic", "Near", "", None, "gauss", 1])
def test_unknown_resampling(name: Any) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_resampling(name)
    assert f"unknown resampling {name!r}" in str(info.value)
    assert "bilinear" in str(info.value)  # lists the choices


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-05T10:30:00Z", datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("  2024-01-05T10:30:00Z ", datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        ("2024-01-05T10:30:00+02:00", datetime(2024, 1, 5, 8, 30, tzinfo=UTC)),
        ("2024-01-05T23:30:00-01:00", datetime(2024, 1, 6, 0, 30, tzinfo=UTC)),
        ("2024-01-05", datetime(2024, 1, 5, tzinfo=UTC)),  # naive means UTC
        (datetime(2024, 1, 5, 10, 30), datetime(2024, 1, 5, 10, 30, tzinfo=UTC)),
        (datetime(2024, 1, 5, 10, 30, tzinfo=timezone(timedelta(hours=-3))), datetime(2024, 1, 5, 13, 30, tzinfo=UTC)),
        (np.datetime64("2024-01-05T10:30:00.123456789"), datetime(2024, 1, 5, 10, 30, 0, 123456, tzinfo=UTC)),
        (np.datetime64("2024-01-05"), datetime(2024, 1, 5, tzinfo=UTC)),
    ],
)
def test_utc_datetime(value: Any, expected: datetime) -> None:
    got = utc_datetime(value)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("yesterday", "use ISO 8601"),
        ("2024-13-01", "use ISO 8601"),
        ("", "use ISO 8601"),
        (np.datetime64("NaT"), "use ISO 8601"),
        (1704450600, "give a datetime or an ISO 8601 string"),
        (None, "give a datetime or an ISO 8601 string"),
    ],
)
def test_invalid_datetimes(value: Any, phrase: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        utc_datetime(value, "record datetime")
    assert str(info.value).startswith("invalid record datetime")
    assert phrase in str(info.value)


def test_new_id_is_a_fresh_uuid4() -> None:
    ids = {new_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


# --- palettes ----------------------------------------------------------------------------------------------


def ramp(*points: tuple[float, int, int, int, int]) -> tuple[PalettePoint, ...]:
    return tuple(PalettePoint(*p) for p in points)


@pytest.mark.parametrize(
    ("name", "points", "error", "phrase"),
    [
        ("bad name", ramp((0, 0, 0, 0, 0), (1, 1, 1, 1, 1)), InvalidName, "invalid palette name"),
        ("p", ramp((0, 0, 0, 0, 0)), InvalidArgument, "needs at least 2 points, got 1"),
        ("p", (), InvalidArgument, "needs at least 2 points, got 0"),
        ("p", ramp((0.1, 0, 0, 0, 0), (1, 1, 1, 1, 1)), InvalidArgument, "must start at value 0 and end at value 1"),
        ("p", ramp((0, 0, 0, 0, 0), (0.9, 1, 1, 1, 1)), InvalidArgument, "must start at value 0 and end at value 1"),
        ("p", ramp((0, 0, 0, 0, 0), (0.5, 0, 0, 0, 0), (0.5, 0, 0, 0, 0), (1, 0, 0, 0, 0)), InvalidArgument,
         "strictly increasing"),
        ("p", ramp((0, 0, 0, 0, 0), (0.7, 0, 0, 0, 0), (0.3, 0, 0, 0, 0), (1, 0, 0, 0, 0)), InvalidArgument,
         "strictly increasing"),
        ("p", ramp((0, 0, 0, 0, 0), (1, 256, 0, 0, 0)), InvalidArgument, "integers 0..255"),
        ("p", ramp((0, 0, -1, 0, 0), (1, 0, 0, 0, 0)), InvalidArgument, "integers 0..255"),
        ("p", ramp((0, 0, 0, 0.5, 0), (1, 0, 0, 0, 0)), InvalidArgument, "integers 0..255"),
        ("p", ramp((0, 0, 0, 0, 0), (1, 0, 0, 0, 300)), InvalidArgument, "integers 0..255"),
        ("p", ramp((0, True, 0, 0, 0), (1, 0, 0, 0, 0)), InvalidArgument, "integers 0..255"),
    ],
)
def test_invalid_palettes(name: str, points: tuple[PalettePoint, ...], error: type[Exception], phrase: str) -> None:
    with pytest.raises(error) as info:
        Palette(name, points)
    assert phrase in str(info.value)


def test_palette_colours_interpolate_linearly_and_clip() -> None:
    palette = Palette("ramp", ramp((0, 0, 0, 0, 0), (0.5, 200, 100, 0, 250), (1, 255, 255, 255, 255)))
    values = np.array([[-1.0, 0.0, 0.25, 0.5], [0.6, 1.0, 2.0, 0.5]])
    colours = palette.colours(values)
    assert colours.dtype == np.uint8 and colours.shape == (2, 4, 4)
    expected = np.array(
        [
            [[0, 0, 0, 0], [0, 0, 0, 0], [100, 50, 0, 125], [200, 100, 0, 250]],
            # 0.6 is a fifth of the way from the 0.5 point to the 1 point
            [[211, 131, 51, 251], [255, 255, 255, 255], [255, 255, 255, 255], [200, 100, 0, 250]],
        ],
        dtype="uint8",
    )
    np.testing.assert_array_equal(colours, expected)


def test_palette_colours_round_to_nearest() -> None:
    palette = Palette("grey", ramp((0, 0, 0, 0, 255), (1, 10, 10, 10, 255)))
    # 0.34 → 3.4 → 3, 0.36 → 3.6 → 4 (a truncating cast would give 3)
    np.testing.assert_array_equal(palette.colours(np.array([0.34, 0.36]))[:, 0], [3, 4])


# --- datasets and the other value types ----------------------------------------------------------------------


def utm_dataset(**kwargs: Any) -> Dataset:
    base: dict[str, Any] = dict(
        id=1, record_id="r", instance_id="i", uri="/data/a.tif", subdir="", bands=(1, 2, 3),
        dformat=DFormat("uint16", 0, 0, 10000), real_min=0.0, real_max=1.0, exponent=1.0,
        status=DatasetStatus.ACTIVE, crs="EPSG:32631", transform=(20.0, 0.0, 360000.0, 0.0, -20.0, 4830000.0),
        width=300, height=200,
    )
    base.update(kwargs)
    return Dataset(**base)


def test_dataset_footprints_are_shapely_geometries_of_the_stored_wkt() -> None:
    # a 300 × 200 file of 20 m pixels from (360000, 4830000): 6 km × 4 km
    ds = utm_dataset(
        footprint_wkt="POLYGON ((360000 4826000, 366000 4826000, 366000 4830000, 360000 4830000, 360000 4826000))",
        footprint_4326_wkt="MULTIPOLYGON (((1.25 43.6, 1.33 43.6, 1.33 43.64, 1.25 43.64, 1.25 43.6)))",
    )
    fp = ds.footprint
    assert isinstance(fp, shapely.Polygon)
    assert fp.bounds == (360000.0, 4826000.0, 366000.0, 4830000.0)
    assert fp.area == pytest.approx(6000.0 * 4000.0)
    assert fp.contains(shapely.Point(363000, 4828000)) and not fp.contains(shapely.Point(366001, 4828000))
    ll = ds.footprint_4326
    assert isinstance(ll, shapely.MultiPolygon)
    assert ll.bounds == pytest.approx((1.25, 43.6, 1.33, 43.64))
    assert ll.contains(shapely.Point(1.29, 43.62))


def test_dataset_has_overviews() -> None:
    assert utm_dataset(overviews=((150, 100), (75, 50))).has_overviews is True
    assert utm_dataset().has_overviews is False


def test_dataset_status_values() -> None:
    assert [s.value for s in DatasetStatus] == ["ACTIVE", "INACTIVE", "TODELETE"]
    assert DatasetStatus("INACTIVE") is DatasetStatus.INACTIVE
    assert DatasetStatus.TODELETE == "TODELETE"  # a StrEnum compares (and is stored) as its text
    with pytest.raises(ValueError):
        DatasetStatus("DELETED")


VALUES = [
    DFormat("uint8", 0, 0, 255),
    PalettePoint(0.0, 1, 2, 3),
    Palette("p", ramp((0, 0, 0, 0, 0), (1, 1, 1, 1, 1))),
    Variable("v-id", "v", DFormat("uint8", 0, 0, 255), ("red",)),
    Instance("i-id", "v-id", "i"),
    Record("r-id", "r", datetime(2024, 1, 5, tzinfo=UTC)),
    Container("/data"),
    utm_dataset(),
    Layout("l"),
    Cell("c", "EPSG:32631", "POLYGON ((0 0, 1 0, 1 1, 0 0))"),
    Grid("g"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_value_types_are_frozen_and_hashable_by_value(value: Any) -> None:
    first = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, getattr(value, first))
    assert dataclasses.replace(value) == value
    if not any(isinstance(getattr(value, f.name), dict) for f in dataclasses.fields(value)):
        assert hash(dataclasses.replace(value)) == hash(value)


def test_entity_errors_are_geocube_errors() -> None:
    # what a caller catches: one base class for names, formats, resamplings and datetimes
    for call in (
        lambda: check_name("a b"),
        lambda: DFormat("uint8", 0, 1, 0),
        lambda: check_resampling("magic"),
        lambda: utc_datetime("never"),
        lambda: Palette("p", ()),
    ):
        with pytest.raises(GeocubeError):
            call()


@pytest.mark.parametrize("value", [(None, 0, 0, 1), {"dtype": None, "nodata": 0, "min": 0, "max": 1}])
def test_a_missing_dtype_is_refused_not_taken_as_float64(value: Any) -> None:
    with pytest.raises(InvalidDFormat, match="unknown dtype"):
        DFormat.parse(value)
