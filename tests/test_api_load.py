"""The load test of bench/api_load.py, short: a few clients for a few seconds against ``geocube serve`` in a
child process, on SQLite and PostGIS. Every tile and plan must be answered; times are not asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "api_load.py"


def load_module():
    spec = importlib.util.spec_from_file_location("api_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_short_load_has_no_error(catalog_url, tmp_path):
    api_load = load_module()
    rows = api_load.run(catalog_url, clients=8, duration=3.0, size=256, data_dir=tmp_path / "data")
    by_kind = {r.kind: r for r in rows}
    assert set(by_kind) == {"tile", "plan"}
    for row in rows:
        assert row.errors == 0, row.error_examples
        assert row.requests > 0 and row.p50_ms is not None and row.p99_ms is not None
    text = api_load.show(rows, 8, 3.0)
    assert "p50" in text and "tile" in text and "plan" in text
