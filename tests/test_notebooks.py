"""Every notebook in ``notebooks/`` runs top to bottom in a fresh ``python3`` kernel.

Each notebook runs in a temporary working directory (``TMPDIR`` points there too, so whatever it creates
stays out of the repository) with matplotlib's non-interactive Agg backend. A cell that raises fails the
test. A code cell tagged ``expect-true`` states a fact: the last line it prints must be ``True``.
Notebooks are committed without outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell
EXPECT_TRUE = "expect-true"


def _stdout(cell: dict) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", ()) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")


def _html(cell: dict) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", ())
                   if o.get("output_type") in ("execute_result", "display_data"))


def _run(path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nbformat.NotebookNode, Path, Path]:
    cwd, tmpdir = tmp / "cwd", tmp / "tmp"
    cwd.mkdir()
    tmpdir.mkdir()
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb, cwd, tmpdir


def _check_walkthrough(cells: dict[str, dict]) -> None:
    """The walk-through shows a lazy cube, the plan's JSON, a point timeseries and the dashboard link."""
    assert "Dask graph" in _html(cells["cube"]) or "dask.array" in _html(cells["cube"])
    assert "uri:" in _stdout(cells["plan"]) and "images" in _stdout(cells["plan"])
    assert "S2_T31TGL_0" in _html(cells["point"])
    assert "dashboard: http" in _stdout(cells["cluster"])
    assert sum(EXPECT_TRUE in c.metadata.get("tags", ()) for c in cells.values()) >= 2


def _check_remote(cells: dict[str, dict]) -> None:
    """The remote notebook fetches a plan from geocube serve, computes the cube here, and shows a tile."""
    assert "sources" in _stdout(cells["plan"]) and "uri:" in _stdout(cells["plan"])
    assert "AuthenticationError" in _stdout(cells["remote"])
    assert "asked again: 304" in _stdout(cells["tile"])
    assert any(o.get("data", {}).get("image/png") for o in cells["tile"].get("outputs", ()))
    assert sum(EXPECT_TRUE in c.metadata.get("tags", ()) for c in cells.values()) >= 2


def _check_scaling(cells: dict[str, dict]) -> None:
    """The scaling walk-through prints the dashboard link and the job's timing, shows distributed.progress to
    100 % and the Kubernetes resources (the workers-over-time plot is checked by its expect-true cell's data)."""
    assert "Dask dashboard: http" in _stdout(cells["cluster"])
    assert "job scale-out: DONE after" in _stdout(cells["job"])
    assert "100% Completed" in _stdout(cells["progress"])
    assert "--preload geocube_dask.scaling" in _stdout(cells["kube-spec"])
    assert "kind: DaskAutoscaler" in _stdout(cells["manifest"])
    assert sum(EXPECT_TRUE in c.metadata.get("tags", ()) for c in cells.values()) >= 4


CHECKS = {"walkthrough": _check_walkthrough, "remote": _check_remote, "scaling": _check_scaling}


def test_notebooks_exist() -> None:
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [c.get("id", i) for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb, cwd, tmpdir = _run(path, tmp_path, monkeypatch)
    cells = {c.get("id", str(i)): c for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    assert all(c.execution_count is not None for c in cells.values())
    for cid, cell in cells.items():
        if EXPECT_TRUE in cell.metadata.get("tags", ()):
            lines = _stdout(cell).strip().splitlines()
            assert lines and lines[-1] == "True", f"{path.name}, cell {cid}: printed {lines!r}"
    assert not list(cwd.iterdir()), f"{path.name} wrote into its working directory"
    left = [p.name for p in tmpdir.iterdir() if p.name != "dask-scratch-space"]
    assert not left, f"{path.name} left temporary files behind: {left}"
    if path.stem in CHECKS:
        CHECKS[path.stem](cells)
