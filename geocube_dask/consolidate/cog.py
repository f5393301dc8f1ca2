"""Writing one record's image of a cell as a tiled COG, through GDAL's COG driver.

:func:`creation_options` turns a layout's compression choice into validated COG driver options, so that
a bad choice fails when the job is created, before any pixel is computed:

- ``lossless`` (default): the layout's codec (``codec``, default ZSTD) with, for the codecs that take
  one (LZW, DEFLATE, ZSTD), the horizontal predictor (``PREDICTOR=STANDARD``, i.e. 2) for
  integers, the floating-point predictor (``FLOATING_POINT``, 3) for floats;
- ``lossy``: LERC_ZSTD with ``MAX_Z_ERROR=max_error`` (every value within ``max_error`` of the input);
- ``none``: no compression;
- ``custom``: the caller's options, checked against an allow-list of COG creation options.

Empty (all-nodata) tiles are left out of the file (``SPARSE_OK=TRUE``); GDAL reads them back as nodata.

:func:`write_cog` writes a ``(bands, height, width)`` array with overviews halving the size until it
is at most ``overview_min_size`` pixels (−1 = 256, 0 = no overviews). Overview resampling is GDAL's:
it supports NEAREST, AVERAGE, RMS, BILINEAR, CUBIC, CUBICSPLINE, LANCZOS, GAUSS, MODE and
AVERAGE_MAGPHASE for overviews, but not MIN, MAX, MED, Q1 or Q3 (those are warping methods only;
checked on GDAL 3.10), so :func:`overview_resampling_for` maps those to NEAREST.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine

from ..entities import DTYPES, RESAMPLINGS, check_resampling
from ..errors import InvalidArgument
from ..projection import crs_string

COMPRESSIONS = ("lossless", "lossy", "none", "custom")
OVERVIEW_RESAMPLINGS = (
    "NEAREST", "AVERAGE", "RMS", "BILINEAR", "CUBIC", "CUBICSPLINE", "LANCZOS", "GAUSS", "MODE", "AVERAGE_MAGPHASE",
)
DEFAULT_OVERVIEW_MIN_SIZE = 256
MAX_BLOCK_SIZE = 4096

_CODECS = ("NONE", "LZW", "DEFLATE", "ZSTD", "LZMA", "LERC", "LERC_DEFLATE", "LERC_ZSTD", "JPEG", "WEBP")
_LEVELS = {"DEFLATE": (1, 12), "ZSTD": (1, 22), "LZMA": (0, 9), "LERC_DEFLATE": (1, 12), "LERC_ZSTD": (1, 22)}
# GDAL 3.10's COG driver applies PREDICTOR to these only (asked with LZMA, the file has none)
_PREDICTED = ("LZW", "DEFLATE", "ZSTD")
# codecs that give back exactly what was written (LERC with MAX_Z_ERROR=0)
LOSSLESS_CODECS = ("ZSTD", "DEFLATE", "LZW", "LZMA", "LERC", "LERC_DEFLATE", "LERC_ZSTD", "NONE")
_PREDICTORS = {"NO": "NO", "1": "NO", "YES": "YES", "STANDARD": "STANDARD", "2": "STANDARD",
               "FLOATING_POINT": "FLOATING_POINT", "3": "FLOATING_POINT"}
_BOOLEANS = {"TRUE": "TRUE", "YES": "TRUE", "ON": "TRUE", "1": "TRUE",
             "FALSE": "FALSE", "NO": "FALSE", "OFF": "FALSE", "0": "FALSE"}
_RULED_BY_LAYOUT = {
    "BLOCKSIZE": "the block size is the layout's block_size",
    "OVERVIEWS": "overviews follow the layout's overview_min_size",
    "OVERVIEW_COUNT": "overviews follow the layout's overview_min_size",
}
_CHANGE_GRID = ("TILING_SCHEME", "ZOOM_LEVEL", "ZOOM_LEVEL_STRATEGY", "TARGET_SRS", "RES", "EXTENT", "ALIGNED_LEVELS",
                "ADD_ALPHA", "RESAMPLING", "WARP_RESAMPLING")


def overview_resampling_for(resampling: str) -> str:
    """GDAL's overview resampling for a variable's resampling name.

    Interpolations (bilinear, cubic, cubicspline, lanczos) and average give AVERAGE (an overview pixel
    stands for the source pixels under it); near gives NEAREST and mode MODE; min, max, med, q1, q3,
    which GDAL cannot use for overviews, give NEAREST (values stay ones the image really has).
    """
    name = check_resampling(resampling)
    if name in ("bilinear", "cubic", "cubicspline", "lanczos", "average"):
        return "AVERAGE"
    if name == "mode":
        return "MODE"
    return "NEAREST"


def _overview_resampling(value: Any) -> str:
    if isinstance(value, str):
        if value.upper() in OVERVIEW_RESAMPLINGS:
            return value.upper()
        if value.lower() in (*RESAMPLINGS, "nearest"):
            return overview_resampling_for(value.lower())
    raise InvalidArgument(
        f"unknown overview resampling {value!r}: choose one of {', '.join(OVERVIEW_RESAMPLINGS)} "
        f"(or a variable resampling: {', '.join(RESAMPLINGS)})"
    )


def _text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str | int | float | np.integer | np.floating):
        return str(value).strip()
    raise InvalidArgument(f"creation option {key} must be text or a number, not {value!r}")


def _int_in(key: str, value: str, lo: int, hi: int) -> str:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not lo <= number <= hi:
        raise InvalidArgument(f"creation option {key}={value!r} must be an integer in [{lo}, {hi}]")
    return str(number)


def _non_negative(key: str, value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise InvalidArgument(f"creation option {key}={value!r} must be a number >= 0")
    return value


def _choice(key: str, value: str, choices: Mapping[str, str] | tuple[str, ...]) -> str:
    upper = value.upper()
    if upper not in choices:
        names = sorted(set(choices.values()) if isinstance(choices, Mapping) else choices)
        raise InvalidArgument(f"creation option {key}={value!r} must be one of {', '.join(names)}")
    return choices[upper] if isinstance(choices, Mapping) else upper


def _num_threads(key: str, value: str) -> str:
    return "ALL_CPUS" if value.upper() == "ALL_CPUS" else _int_in(key, value, 1, 1024)


_VALUE_CHECKS: dict[str, Callable[[str, str], str]] = {
    "COMPRESS": lambda k, v: _choice(k, v, _CODECS),
    "OVERVIEW_COMPRESS": lambda k, v: _choice(k, v, _CODECS),
    "LEVEL": lambda k, v: _int_in(k, v, 0, 22),
    "PREDICTOR": lambda k, v: _choice(k, v, _PREDICTORS),
    "OVERVIEW_PREDICTOR": lambda k, v: _choice(k, v, _PREDICTORS),
    "QUALITY": lambda k, v: _int_in(k, v, 1, 100),
    "OVERVIEW_QUALITY": lambda k, v: _int_in(k, v, 1, 100),
    "MAX_Z_ERROR": _non_negative,
    "MAX_Z_ERROR_OVERVIEW": _non_negative,
    "NUM_THREADS": _num_threads,
    "BIGTIFF": lambda k, v: _choice(k, v, ("YES", "NO", "IF_NEEDED", "IF_SAFER")),
    "SPARSE_OK": lambda k, v: _choice(k, v, _BOOLEANS),
    "OVERVIEW_RESAMPLING": lambda k, v: _overview_resampling(v),
    "STATISTICS": lambda k, v: _choice(k, v, ("AUTO", "YES", "NO")),
}
ALLOWED_OPTIONS = tuple(_VALUE_CHECKS)


def _check_codec(options: dict[str, str], dtype: str, bands: int | None, prefix: str = "") -> None:
    """Options that depend on the codec and the data type (``prefix``: "OVERVIEW_" for overviews)."""
    codec = options.get(f"{prefix}COMPRESS", options.get("COMPRESS", "LZW") if prefix else "LZW")
    where = f"{prefix}COMPRESS={codec}"
    if codec in ("JPEG", "WEBP") and dtype != "uint8":
        raise InvalidArgument(f"{where} only stores 8-bit data (uint8), not {dtype}: use ZSTD, DEFLATE or LERC")
    if codec == "WEBP" and bands is not None and bands not in (3, 4):
        raise InvalidArgument(f"{where} needs 3 or 4 bands (RGB or RGBA), not {bands}")
    predictor = options.get(f"{prefix}PREDICTOR")
    if predictor not in (None, "NO"):
        if codec not in _PREDICTED:
            raise InvalidArgument(f"{prefix}PREDICTOR applies to {', '.join(_PREDICTED)}, not to {where}")
        if predictor == "FLOATING_POINT" and np.dtype(dtype).kind != "f":
            raise InvalidArgument(f"{prefix}PREDICTOR=FLOATING_POINT is for float data, not {dtype}: use STANDARD")
    if f"{prefix}QUALITY" in options and codec not in ("JPEG", "WEBP"):
        raise InvalidArgument(f"{prefix}QUALITY applies to JPEG and WEBP, not to {where}")
    if not prefix:
        if "LEVEL" in options:
            if codec not in _LEVELS:
                raise InvalidArgument(f"LEVEL applies to {', '.join(_LEVELS)}, not to {where}")
            _int_in("LEVEL", options["LEVEL"], *_LEVELS[codec])
        for key in ("MAX_Z_ERROR", "MAX_Z_ERROR_OVERVIEW"):
            if key in options and not codec.startswith("LERC"):
                raise InvalidArgument(f"{key} applies to LERC, LERC_DEFLATE and LERC_ZSTD, not to {where}")


def _custom(creation: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(creation, Mapping) or not creation:
        raise InvalidArgument(
            "compression='custom' needs creation_options, e.g. {'COMPRESS': 'DEFLATE', 'PREDICTOR': 2}"
        )
    options: dict[str, str] = {}
    for key, value in creation.items():
        name = str(key).upper().strip()
        if name in _RULED_BY_LAYOUT:
            raise InvalidArgument(f"creation option {name} is not allowed: {_RULED_BY_LAYOUT[name]}")
        if name in _CHANGE_GRID:
            raise InvalidArgument(f"creation option {name} is not allowed: it would change the grid the layout sets")
        if name not in _VALUE_CHECKS:
            raise InvalidArgument(
                f"unknown or unsupported COG creation option {key!r}: allowed are {', '.join(ALLOWED_OPTIONS)}"
            )
        if name in options:
            raise InvalidArgument(f"creation option {name} is given twice")
        options[name] = _VALUE_CHECKS[name](name, _text(name, value))
    return options


def creation_options(
    dtype: str,
    compression: str = "lossless",
    *,
    max_error: float | None = None,
    creation_options: Mapping[str, Any] | None = None,
    block_size: int = 256,
    overview_resampling: str = "AVERAGE",
    bands: int | None = None,
    codec: str = "ZSTD",
) -> dict[str, str]:
    """Validated GDAL COG driver options (upper-case names, text values) for one consolidation.

    ``compression``: lossless | lossy | none | custom (see the module docstring); ``max_error``: the
    LERC error bound, required by and only for ``lossy``; ``creation_options``: only for ``custom``;
    ``block_size``: tile size in pixels (a multiple of 16; GDAL's COG driver logs a warning below 128);
    ``overview_resampling``: a GDAL overview resampling or a variable resampling name (mapped by
    :func:`overview_resampling_for`); ``bands``: the band count, if known, to check WEBP's needs;
    ``codec``: the lossless codec (a layout's compression), one of :data:`LOSSLESS_CODECS`.
    Raises InvalidArgument.
    """
    if dtype not in DTYPES:
        raise InvalidArgument(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if not isinstance(compression, str) or compression.lower() not in COMPRESSIONS:
        raise InvalidArgument(f"unknown compression {compression!r}: choose one of {', '.join(COMPRESSIONS)}")
    compression = compression.lower()
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer) or not (
        16 <= block_size <= MAX_BLOCK_SIZE and block_size % 16 == 0
    ):
        raise InvalidArgument(f"block_size must be a multiple of 16 in [16, {MAX_BLOCK_SIZE}], not {block_size!r}")
    if bands is not None and (isinstance(bands, bool) or not isinstance(bands, int) or bands < 1):
        raise InvalidArgument(f"bands must be a positive integer, not {bands!r}")
    if max_error is not None and compression != "lossy":
        raise InvalidArgument(f"max_error is for compression='lossy', not {compression!r}")
    if creation_options is not None and compression != "custom":
        raise InvalidArgument(f"creation_options are for compression='custom', not {compression!r}")
    if not isinstance(codec, str) or codec.upper() not in LOSSLESS_CODECS:
        raise InvalidArgument(
            f"{codec!r} is not a lossless codec: a layout's compression is one of {', '.join(LOSSLESS_CODECS)}"
        )
    if compression == "lossless":
        options = {"COMPRESS": codec.upper()}
        if codec.upper() in _PREDICTED:
            options["PREDICTOR"] = "FLOATING_POINT" if np.dtype(dtype).kind == "f" else "STANDARD"
        elif codec.upper().startswith("LERC"):
            options["MAX_Z_ERROR"] = "0"
    elif compression == "lossy":
        if isinstance(max_error, bool) or not isinstance(max_error, int | float) or not (
            math.isfinite(max_error) and max_error > 0
        ):
            raise InvalidArgument(
                f"compression='lossy' needs max_error > 0 (the largest error allowed on a value), not {max_error!r}"
            )
        options = {"COMPRESS": "LERC_ZSTD", "MAX_Z_ERROR": repr(float(max_error))}
    elif compression == "none":
        options = {"COMPRESS": "NONE"}
    else:
        options = _custom(creation_options or {})
        if "OVERVIEW_RESAMPLING" in options:
            overview_resampling = options["OVERVIEW_RESAMPLING"]
    _check_codec(options, dtype, bands)
    if "OVERVIEW_COMPRESS" in options or "OVERVIEW_PREDICTOR" in options or "OVERVIEW_QUALITY" in options:
        _check_codec(options, dtype, bands, prefix="OVERVIEW_")
    options.setdefault("SPARSE_OK", "TRUE")
    options["BLOCKSIZE"] = str(int(block_size))
    options["OVERVIEW_RESAMPLING"] = _overview_resampling(overview_resampling)
    return options


def overview_count(height: int, width: int, overview_min_size: int = -1) -> int:
    """How many ×2 overviews until the largest side is at most ``overview_min_size`` (−1 = 256, 0 = none)."""
    if isinstance(overview_min_size, bool) or not isinstance(overview_min_size, int | np.integer) or (
        overview_min_size < -1
    ):
        raise InvalidArgument(
            f"overview_min_size must be -1 (default 256), 0 (no overviews) or a size, not {overview_min_size!r}"
        )
    if overview_min_size == 0:
        return 0
    limit = DEFAULT_OVERVIEW_MIN_SIZE if overview_min_size == -1 else int(overview_min_size)
    count, side = 0, max(height, width)
    while side > limit:
        side = -(-side // 2)
        count += 1
    return count


def _check_nodata(nodata: float | None, dtype: np.dtype) -> None:
    if nodata is None:
        return
    if isinstance(nodata, bool) or not isinstance(nodata, int | float | np.integer | np.floating):
        raise InvalidArgument(f"nodata must be a number or None, not {nodata!r}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (math.isfinite(nodata) and float(nodata).is_integer() and info.min <= nodata <= info.max):
            raise InvalidArgument(f"nodata {nodata} is not an integer of {dtype.name} [{info.min}, {info.max}]")


def write_cog(
    array: np.ndarray,
    path: str | os.PathLike[str],
    crs: Any,
    transform: Affine,
    nodata: float | None,
    options: Mapping[str, str],
    overview_min_size: int = -1,
    overview_resampling: str | None = None,
) -> None:
    """Write ``array`` (bands, height, width) as a tiled COG at local ``path``.

    ``options`` come from :func:`creation_options`; the overview count follows ``overview_min_size``
    (see :func:`overview_count`); ``overview_resampling`` (None: the one in ``options``, else AVERAGE)
    overrides the options'. The image is staged in GDAL's in-memory driver, then copied by the COG
    driver (which has no direct writing mode), so memory peaks at about twice the array.
    """
    if not isinstance(array, np.ndarray):
        raise InvalidArgument(f"array must be a numpy array, not {type(array).__name__}")
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or 0 in array.shape:
        raise InvalidArgument(f"array must be (bands, height, width) and not empty, not of shape {array.shape}")
    if array.dtype.name not in DTYPES:
        raise InvalidArgument(f"array dtype {array.dtype.name} is not one of {', '.join(DTYPES)}")
    if not isinstance(transform, Affine):
        raise InvalidArgument(f"transform must be an affine.Affine, not {transform!r}")
    _check_nodata(nodata, array.dtype)
    bands, height, width = array.shape
    opts = {str(k).upper(): str(v) for k, v in options.items()}
    for key in ("OVERVIEWS", "OVERVIEW_COUNT"):
        opts.pop(key, None)
    count = overview_count(height, width, overview_min_size)
    if count:
        opts["OVERVIEW_COUNT"] = str(count)
    else:  # OVERVIEW_COUNT=0 fails in GDAL 3.10's COG driver; OVERVIEWS=NONE is the way to say it
        opts["OVERVIEWS"] = "NONE"
    if overview_resampling is not None:
        opts["OVERVIEW_RESAMPLING"] = _overview_resampling(overview_resampling)
    opts.setdefault("OVERVIEW_RESAMPLING", "AVERAGE")
    profile = dict(driver="MEM", width=width, height=height, count=bands, dtype=array.dtype.name,
                   crs=crs_string(crs), transform=transform, nodata=nodata)
    with rasterio.open("", "w", **profile) as mem:
        mem.write(array)
        rasterio.shutil.copy(mem, os.fspath(path), driver="COG", **opts)
