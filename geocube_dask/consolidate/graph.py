"""A consolidation's files → one dask graph: record images → write (COG) → assemble (MUCOG) → upload.

Per file: each record's image is the cube engine's chunk tasks on the cell grid (``geocube-cube-…``),
cast to the stored format; a ``consolidate-write`` task per record writes it as a COG in the staging
folder; one ``consolidate-assemble`` task makes the file (a MUCOG for several records) and describes
it; one ``consolidate-upload`` task puts it in storage and returns what to index. Key names carry the
job's token and a hash of the file's key, so the dashboard groups them by step and a re-run of the same job
computes the same keys. The graph touches no database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dask.delayed import Delayed, delayed

from .files import FileSettings, assemble_file, staging_dir, upload_file, write_record
from .images import ImageSettings, record_image
from .plan import FilePlan


@dataclass(frozen=True)
class Settings:
    """Everything the files of one consolidation share (stored in the job, JSON round-trip)."""

    images: ImageSettings
    files: FileSettings

    def to_json(self) -> dict[str, Any]:
        return {"images": self.images.to_json(), "files": self.files.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Settings:
        return cls(ImageSettings.from_json(d["images"]), FileSettings.from_json(d["files"]))


def file_graph(plan: FilePlan, settings: Settings, token: str) -> Delayed:
    """The lazy result of one file: ``{"uri", "records": [{subdir, crs, transform, …}]}`` once uploaded."""
    index = hashlib.sha1(plan.key.encode(), usedforsecurity=False).hexdigest()[:12]
    folder = str(staging_dir(settings.files, token, plan.key))
    grid = plan.cell.grid
    cogs = []
    for i, (record, sources) in enumerate(plan.records):
        image = record_image(plan.cell, record, sources, settings.images)
        cogs.append(delayed(write_record, pure=True)(
            image, folder, i, grid.crs, grid.transform, settings.files, plan.uri,
            dask_key_name=f"consolidate-write-{token}-{index}-{i}",
        ))
    assembled = delayed(assemble_file, pure=True)(
        cogs, folder, settings.files, plan.uri, dask_key_name=f"consolidate-assemble-{token}-{index}",
    )
    return delayed(upload_file, pure=True)(
        assembled, plan.uri, folder, dask_key_name=f"consolidate-upload-{token}-{index}",
    )


def consolidation_graph(plans: Sequence[FilePlan], settings: Settings, token: str) -> dict[str, Delayed]:
    """``{file key: lazy result}`` for the files of a consolidation (compute them together: one graph)."""
    return {p.key: file_graph(p, settings, token) for p in plans}
