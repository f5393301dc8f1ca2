"""Helpers shared by the benchmark harness and its per-tool runners.

This module is imported by two interpreters: the main one (geocube_dask, the floor) and the peers'
virtual environment (odc-stac, stackstac). It depends on the standard library, numpy and affine only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "_data"
PEERS_VENV = BENCH_DIR / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
if str(REPO_DIR) not in sys.path:  # geocube_dask from this checkout when it is not installed
    sys.path.append(str(REPO_DIR))

BANDS = ("B2", "B3", "B4", "B8")
NODATA = 0
CHUNK = 1024
THREADS = 2
EXPORT_DONE = "=== export done ==="  # printed by an out-of-core job once its export has finished

# Tool names, in table order. Peers run in the peers' venv; the others with the main interpreter.
GEOCUBE = "geocube"
GEOCUBE_LOAD = "geocube-load"  # gd.load(cube): chunks written into one preallocated array
ODC = "odc"
STACKSTAC = "stackstac"
FLOOR = "floor"
FLOOR_OVR = "floor-ovr"
ODC_BBOX = "odc-bbox"  # timeseries: the peer loading only the pixel around the point
STACKSTAC_BBOX = "stackstac-bbox"
PEERS = (ODC, STACKSTAC, ODC_BBOX, STACKSTAC_BBOX)
LABELS = {
    GEOCUBE: "geocube_dask",
    GEOCUBE_LOAD: "geocube_dask load",
    ODC: "odc-stac",
    STACKSTAC: "stackstac",
    FLOOR: "floor, full res",
    FLOOR_OVR: "floor, overviews",
    ODC_BBOX: "odc-stac, 1 px bbox",
    STACKSTAC_BBOX: "stackstac, 1 px bbox",
}


@dataclass(frozen=True)
class Grid:
    """An output pixel grid: CRS, affine transform (GDAL order a, b, c, d, e, f) and (height, width)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]

    @property
    def affine(self) -> Affine:
        """The transform as an ``affine.Affine``."""
        return Affine(*self.transform)

    @property
    def resolution(self) -> float:
        """Pixel width in CRS units (grids here are north-up with square pixels)."""
        return abs(self.transform[0])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the grid's outer pixel edges."""
        a, _, c, _, e, f = self.transform
        h, w = self.shape
        xs = (c, c + a * w)
        ys = (f, f + e * h)
        return min(xs), min(ys), max(xs), max(ys)

    def x_centres(self) -> np.ndarray:
        """x coordinates of the pixel centres, west to east."""
        a, _, c = self.transform[:3]
        return c + (np.arange(self.shape[1]) + 0.5) * a

    def y_centres(self) -> np.ndarray:
        """y coordinates of the pixel centres, north to south."""
        e, f = self.transform[4:6]
        return f + (np.arange(self.shape[0]) + 0.5) * e

    def pixels(self) -> int:
        """Number of pixels of one band of one image."""
        return self.shape[0] * self.shape[1]

    def scaled(self, factor: float) -> Grid:
        """The same extent with pixels ``factor`` times larger (the extent is kept, shape rounded up)."""
        a, b, c, d, e, f = self.transform
        h, w = self.shape
        return Grid(
            self.crs,
            (a * factor, b, c, d, e * factor, f),
            (math.ceil(h / factor), math.ceil(w / factor)),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grid:
        """Inverse of ``to_json``."""
        return cls(data["crs"], tuple(data["transform"]), tuple(data["shape"]))  # type: ignore[arg-type]


def check_coords(xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray, grid: Grid) -> None:
    """Raise ``AssertionError`` unless ``xs``/``ys`` are exactly the pixel centres of ``grid``.

    A tolerance of 1e-6 pixel absorbs the float rounding of each library's own centre arithmetic.
    """
    xs = np.asarray(xs, dtype="float64")
    ys = np.asarray(ys, dtype="float64")
    tol = 1e-6 * grid.resolution
    assert xs.shape == (grid.shape[1],), f"x has {xs.shape[0]} pixels, expected {grid.shape[1]}"
    assert ys.shape == (grid.shape[0],), f"y has {ys.shape[0]} pixels, expected {grid.shape[0]}"
    dx = float(np.max(np.abs(xs - grid.x_centres())))
    dy = float(np.max(np.abs(ys - grid.y_centres())))
    assert dx <= tol, f"x coordinates differ from the requested grid by up to {dx} CRS units"
    assert dy <= tol, f"y coordinates differ from the requested grid by up to {dy} CRS units"


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far.

    Linux's VmHWM belongs to this program's memory only; ``ru_maxrss`` would also count the parent's
    resident size at the time it forked this process (it is kept across exec).
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> int:
    """Reset this process's peak resident set size to its current one (Linux ``/proc/self/clear_refs``,
    value 5) and return the current one, so that :func:`peak_rss_bytes` then reports the peak since.
    Memory the C allocator keeps after earlier runs freed it is first given back (glibc's
    ``malloc_trim``): otherwise it would count as resident before the run and hide what the run needs."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` and return (seconds, its result)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def read_json(path: str | os.PathLike[str]) -> Any:
    """Load a JSON file."""
    with open(path) as fh:
        return json.load(fh)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write a JSON file atomically (temporary file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
    tmp.replace(path)


def python_for(tool: str) -> str:
    """The interpreter that runs ``tool``: the peers' venv for peers, this one otherwise."""
    return str(PEERS_PYTHON) if tool in PEERS else sys.executable


def ensure_peers() -> None:
    """Create the peers' virtual environment with ``setup_peers.sh`` (idempotent, fast when done)."""
    subprocess.run(["bash", str(BENCH_DIR / "setup_peers.sh")], check=True)


def _tree_rss(proc: Any) -> int:
    """Resident memory of ``proc`` and all its descendants (psutil.Process), in bytes."""
    import psutil

    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in members:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _kill_tree(pid: int) -> None:
    """Kill process ``pid`` and all its descendants (a timed-out job and, e.g., its dask workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        members = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in members:
        with contextlib.suppress(psutil.Error):
            p.kill()


def run_job(job: dict[str, Any], work_dir: Path, timeout: float | None = None,
            sample_tree: bool = False) -> dict[str, Any]:
    """Run one job in a fresh subprocess of the right interpreter and return its JSON result.

    A job that fails returns ``{"error": "..."}`` (the end of its stderr) instead of raising, so that one
    broken tool does not hide the others' numbers. With ``sample_tree`` the resident memory of the
    process and all its descendants (e.g. dask workers) is summed every 0.1 s: ``tree_peak_rss``; the
    job's stderr is returned as ``stderr``.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    name = f"{job['kind']}-{job['tool']}-{job.get('scenario', 'x')}"
    job_path = work_dir / f"{name}.job.json"
    result_path = work_dir / f"{name}.result.json"
    log_path = work_dir / f"{name}.log"
    result_path.unlink(missing_ok=True)
    write_json(job_path, job)
    cmd = [python_for(job["tool"]), str(BENCH_DIR / "run_tool.py"), str(job_path), str(result_path)]
    env = dict(os.environ)
    # the geocube_dask runner imports the package from this checkout, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_DIR), env.get("PYTHONPATH", "")) if p)
    peak = 0
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        start = time.monotonic()
        watched = None
        if sample_tree:
            import psutil

            watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            if watched is not None:
                peak = max(peak, _tree_rss(watched))
            if timeout is not None and time.monotonic() - start > timeout:
                _kill_tree(proc.pid)
                proc.wait()
                failed = {"error": f"timed out after {timeout:g} s"}
                if sample_tree:
                    failed.update(tree_peak_rss=peak, stderr=log_path.read_text(errors="replace"))
                return failed
            time.sleep(0.1 if sample_tree else 0.05)
    output = log_path.read_text(errors="replace")
    if proc.returncode != 0 or not result_path.exists():
        tail = output.strip().splitlines()[-12:]
        failed: dict[str, Any] = {"error": "\n".join(tail) or f"exit code {proc.returncode}"}
        if sample_tree:
            failed.update(tree_peak_rss=peak, stderr=output)
        return failed
    result = read_json(result_path)
    if sample_tree:
        result["tree_peak_rss"] = peak
        result["stderr"] = output
    return result


def fmt_seconds(value: float | None) -> str:
    """Seconds with 2-3 significant digits."""
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def fmt_bytes(value: float | None) -> str:
    """Bytes as GiB or MiB."""
    if value is None:
        return "—"
    if value >= 1024**3:
        return f"{value / 1024**3:.2f} GiB"
    return f"{value / 1024**2:.0f} MiB"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A plain-text table; ``align`` is one char per column, ``l`` or ``r`` (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = []
        for cell, width, side in zip(cells, widths, align, strict=True):
            out.append(str(cell).ljust(width) if side == "l" else str(cell).rjust(width))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def print_report(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], align: str,
                 notes: Sequence[str] = ()) -> None:
    """A benchmark's report: its title line, the table and its notes."""
    print()
    print(title)
    print(render_table(header, rows, align))
    for note in notes:
        print("  note: " + note)
    print()
