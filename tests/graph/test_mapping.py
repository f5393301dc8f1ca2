import numpy as np
import pytest

from geocube_dask.entities import DFormat
from geocube_dask.graph.mapping import Mapping, cast, mapping_for, valid_mask


def plain_map(v, mn, mx, mno, mxo, e):
    return mno + (mxo - mno) * ((v - mn) / (mx - mn)) ** e


def test_identity_mapping_leaves_values():
    m = Mapping(0, 10000, 0, 10000, 1.0)
    assert m.is_identity
    v = np.array([0, 1, 9999, 12000], dtype="uint16")
    assert np.array_equal(m.apply(v), v.astype("float64"))


@pytest.mark.parametrize("exponent", [1.0, 0.5, 2.0])
def test_mapping_formula(exponent):
    m = mapping_for(DFormat("int16", -10001, -10000, 10000), -1.0, 1.0, exponent)
    v = np.array([-10000, -5000, 0, 2500, 10000], dtype="int16")
    expected = [plain_map(float(x), -10000, 10000, -1, 1, exponent) for x in v]
    np.testing.assert_allclose(m.apply(v), expected, rtol=0, atol=1e-15)


def test_cast_rounds_half_away_from_zero_and_saturates():
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999999, 70000.0, -3.0, 65535.4])
    assert cast(v, "uint16").tolist() == [1, 2, 3, 0, 0, 2, 65535, 0, 65535]
    assert cast(v, "int16").tolist() == [1, 2, 3, -1, -2, 2, 32767, -3, 32767]
    assert cast(np.array([127.5, -128.5]), "int8").tolist() == [127, -128]


def test_cast_to_float_keeps_nan():
    out = cast(np.array([np.nan, 1.25]), "float32")
    assert out.dtype == np.float32 and np.isnan(out[0]) and out[1] == np.float32(1.25)


def test_cast_integer_sources_saturate():
    assert cast(np.array([300, -5, 7], dtype="int32"), "uint8").tolist() == [255, 0, 7]


def test_valid_mask_nodata_and_nan():
    assert valid_mask(np.array([0, 1, 2], dtype="uint16"), 0.0).tolist() == [False, True, True]
    assert valid_mask(np.array([0, 1], dtype="uint16"), None) is None
    assert valid_mask(np.array([np.nan, 1.0, -9999.0]), -9999.0).tolist() == [False, True, False]
    assert valid_mask(np.array([np.nan, 1.0]), float("nan")).tolist() == [False, True]
    assert valid_mask(np.array([np.nan, 1.0]), None).tolist() == [False, True]
