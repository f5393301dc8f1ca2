"""Indexing files: read their headers, check them against the variable, insert datasets in one transaction.

Files are read (``fileinfo.read_file_info``, ``ingest.requests.prepare_dataset``) before the transaction opens,
so no database lock is held during slow reads. A request's record may be a ``NewRecord``: it is created,
or reused if identical, inside the same transaction; without an explicit AOI its AOI is the union of the
EPSG:4326 footprints of the files indexed for it in this call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import shapely

from ..entities import Dataset, DatasetStatus, Instance, Record, Variable
from ..errors import InvalidArgument
from .db.engine import Connected
from .geometry import as_multipolygon, footprints_4326
from .ingest import fileinfo
from .ingest.fileinfo import FileInfo
from .ingest.requests import IndexRequest, NewRecord, PreparedDataset, prepare_dataset
from .insertion import insert_datasets
from .instances import load_instance
from .records import RecordSpec, insert_records, record_specs
from .refs import instance_id, record_id
from .variables import load_variable

Progress = Callable[[int, int], None]


def _check_request(n: int, req: Any) -> IndexRequest:
    if not isinstance(req, IndexRequest):
        raise InvalidArgument(f"request #{n} must be an IndexRequest, not {type(req).__name__}")
    if not isinstance(req.uri, str) or not req.uri:
        raise InvalidArgument(f"request #{n}: the uri must be a non-empty string, not {req.uri!r}")
    if not isinstance(req.subdir, str):
        raise InvalidArgument(f"request #{n}: subdir must be a string ('' for none), not {req.subdir!r}")
    exp = req.exponent
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp) or exp <= 0:
        raise InvalidArgument(f"request #{n} ({req.uri}): exponent must be a finite number > 0, not {exp!r}")
    if not isinstance(req.record, Record | str | NewRecord):
        raise InvalidArgument(f"request #{n}: record must be a Record, a record id or a NewRecord")
    return req


class IndexMixin(Connected):
    """index_dataset / index_datasets: files → datasets."""

    def index_dataset(
        self,
        uri: str,
        record: Record | str | NewRecord,
        instance: Instance | str,
        bands: Sequence[int] | None = None,
        dformat: Any = None,
        real_min: float | None = None,
        real_max: float | None = None,
        exponent: float = 1.0,
        subdir: str = "",
    ) -> Dataset:
        """Index one file (or one ``subdir`` of it) as a dataset of ``record`` for ``instance``.

        ``bands``: 1-based indexes in the file (default: the first n, n = the variable's band count);
        ``dformat``: the stored values' format (default: the file's dtype and nodata, range from the
        variable); ``real_min``/``real_max``: what the dformat's min/max mean in the variable's unit;
        ``exponent`` > 0: non-linear mapping. Indexing the same thing twice returns the existing dataset.
        """
        if bands is not None and (isinstance(bands, str) or not isinstance(bands, Sequence)):
            raise InvalidArgument(f"bands must be a list of 1-based band indexes, e.g. [1, 2], not {bands!r}")
        request = IndexRequest(
            uri=uri, record=record, instance=instance, bands=None if bands is None else tuple(bands),
            dformat=dformat, real_min=real_min, real_max=real_max, exponent=exponent, subdir=subdir,
        )
        return self.index_datasets([request])[0]

    def index_datasets(self, requests: Iterable[IndexRequest], progress: Progress | None = None) -> list[Dataset]:
        """Index many files in one transaction (all or nothing), in order.

        ``progress(n_done, n_total)`` is called after each file header is read (for a progress bar).
        """
        if isinstance(requests, IndexRequest) or not isinstance(requests, Iterable):
            raise InvalidArgument("index_datasets takes a list of IndexRequest")
        reqs = [_check_request(n, r) for n, r in enumerate(requests)]
        if progress is not None and not callable(progress):
            raise InvalidArgument("progress must be a callable(n_done, n_total) or None")
        # Resolve instances (and their variables) and record references before touching any file.
        inst_ids = [instance_id(r.instance) for r in reqs]
        new_records = [i for i, r in enumerate(reqs) if isinstance(r.record, NewRecord)]
        specs = record_specs([reqs[i].record for i in new_records])  # type: ignore[misc]
        rec_ids = {i: record_id(r.record) for i, r in enumerate(reqs) if not isinstance(r.record, NewRecord)}
        variables: dict[str, Variable] = {}
        with self._tx(write=False) as conn:
            for iid in dict.fromkeys(inst_ids):
                variables[iid] = load_variable(conn, load_instance(conn, iid).variable_id)

        infos: dict[tuple[str, str], FileInfo] = {}
        prepared: list[PreparedDataset] = []
        for n, (req, iid) in enumerate(zip(reqs, inst_ids, strict=True)):
            key = (req.uri, req.subdir)
            if key not in infos:
                infos[key] = fileinfo.read_file_info(req.uri, req.subdir)
            prepared.append(
                prepare_dataset(
                    infos[key], variables[iid], req.bands, req.dformat, req.real_min, req.real_max, req.exponent
                )
            )
            if progress is not None:
                progress(n + 1, len(reqs))

        specs = _with_footprint_aois(specs, [prepared[i] for i in new_records])
        with self._tx() as conn:
            created = insert_records(conn, specs, exist_ok=True)
            for i, rec in zip(new_records, created, strict=True):
                rec_ids[i] = rec.id
            items = [(rec_ids[i], inst_ids[i], prepared[i]) for i in range(len(reqs))]
            return insert_datasets(conn, items, DatasetStatus.ACTIVE, managed=False)


def _with_footprint_aois(specs: list[RecordSpec], files: list[PreparedDataset]) -> list[RecordSpec]:
    """Give new records without AOI the union of the footprints of their files in this request."""
    union: dict[tuple[Any, ...], list[str]] = {}
    for spec, p in zip(specs, files, strict=True):
        if spec.aoi is None and spec.aoi_id is None:
            union.setdefault(spec.key, []).append(p.footprint_4326_wkt)
    if not union:
        return specs
    aois = {}
    for key, wkts in union.items():
        aois[key] = as_multipolygon(shapely.union_all(footprints_4326(wkts)), "record AOI")
    return [
        RecordSpec(s.name, s.datetime, s.tags, aoi=aois[s.key]) if s.key in aois else s
        for s in specs
    ]
