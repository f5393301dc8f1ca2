"""The remote client against a real server: cubes and timeseries equal the local ones pixel for pixel,
errors come back as the same GeocubeError class with the same message, limits answer clearly."""

from __future__ import annotations

import inspect
from typing import Any

import dask
import httpx
import pytest
import xarray as xr
from scenes import centre_in
from shapely.geometry import box

import geocube_dask as gd
from geocube_dask.catalog.ingest.requests import NewRecord

DATES = {"utm31": "2024-03-01T10:00:00Z", "utm31b": "2024-03-02T10:00:00Z", "utm32": "2024-03-02T10:05:00Z"}


def _index(gc: Any, scenes: dict) -> Any:
    var = gc.create_variable("reflectance", ("uint16", 0, 0, 10000), ["B2", "B3", "B4", "B8"])
    inst = gc.instantiate(var, "master")
    for name, when in DATES.items():
        gc.index_dataset(scenes[name].path, record=NewRecord(name, when, {"constellation": "s2"}), instance=inst)
    return inst


def _compute(obj: Any) -> Any:
    with dask.config.set(scheduler="threads", num_workers=2):
        return obj.compute()


def test_remote_cube_and_timeseries_equal_the_local_ones(api: Any, scenes: dict) -> None:
    remote = api.connect("write")
    inst = _index(remote, scenes)
    local = gd.connect(api.db_url)
    try:
        x, y = centre_in("EPSG:32631")
        request = dict(crs="EPSG:32631", resolution=20, bounds=(x - 1500, y - 1500, x + 1500, y + 1500), chunks=64,
                       group_by="day")
        want = local.get_cube(inst.id, **request)
        got = remote.get_cube(inst, **request)
        assert got.shape == want.shape and got.shape[0] == 2
        xr.testing.assert_identical(_compute(got), _compute(want))
        assert remote.get_cube_plan(inst, **request).to_json() == local.get_cube_plan(inst.id, **request).to_json()
        lon, lat = 5.95, 45.08
        xr.testing.assert_identical(remote.get_timeseries(inst, point=(lon, lat)),
                                    local.get_timeseries(inst.id, point=(lon, lat)))
        area = box(lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005)
        xr.testing.assert_identical(remote.get_timeseries(inst, geometry=area, reduce="max"),
                                    local.get_timeseries(inst.id, geometry=area, reduce="max"))
    finally:
        local.close()
        remote.close()


def test_errors_are_the_local_ones(local_api: Any) -> None:
    remote = local_api.connect("write")
    local = gd.connect(local_api.db_url)
    try:
        for call in (lambda gc: gc.get_variable("missing"),
                     lambda gc: gc.create_variable("bad name", ("uint16", 0, 0, 1), ["x"]),
                     lambda gc: gc.create_variable("v", ("uint99", 0, 0, 1), ["x"]),
                     lambda gc: gc.get_cube_plan("00000000-0000-0000-0000-000000000000", crs="EPSG:4326",
                                                 resolution=1, bounds=(0, 0, 1, 1))):
            with pytest.raises(gd.GeocubeError) as mine:
                call(remote)
            with pytest.raises(gd.GeocubeError) as theirs:
                call(local)
            assert type(mine.value) is type(theirs.value) and str(mine.value) == str(theirs.value)
        with pytest.raises(gd.PermissionDenied, match="admin"):
            remote.tidy()
    finally:
        local.close()
        remote.close()


def test_error_bodies_and_limits(local_api: Any) -> None:
    headers = {"Authorization": f"Bearer {local_api.tokens['read']}"}
    response = httpx.get(local_api.url + "/variables/missing", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "detail": "no variable name 'missing': see list_variables()"}
    response = httpx.get(local_api.url + "/variables", params={"limit": 10**6}, headers=headers)
    assert response.status_code == 413 and response.json()["error"] == "RequestTooLarge"
    assert "maximum page size" in response.json()["detail"]
    response = httpx.post(local_api.url + "/records/search", json={"limit": "many"}, headers=headers)
    assert response.status_code == 422 and response.json()["error"] == "InvalidArgument"
    response = httpx.post(local_api.url + "/records/search", content=b"{" * (17 * 1024 * 1024),
                          headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "RequestTooLarge"


def test_listing_without_a_limit_pages_through_everything(local_api: Any) -> None:
    remote = local_api.connect("write")
    try:
        size = remote.info()["max_page_size"]
        remote.create_records([{"name": f"r{i:05d}", "datetime": "2024-01-01"} for i in range(size + 5)])
        names = [r.name for r in remote.list_records()]
        assert sorted(names) == [f"r{i:05d}" for i in range(size + 5)]  # each once, over two pages
        assert len(remote.list_records(limit=10, page=1)) == 10
    finally:
        remote.close()


def test_connect_needs_a_valid_token(local_api: Any) -> None:
    with pytest.raises(gd.AuthenticationError):
        gd.connect(local_api.url, token="gct_wrong")
    with pytest.raises(gd.CatalogConnectionError, match="geocube serve"):
        gd.connect("http://127.0.0.1:9", token="x")


def _explicit_signature(cls: type, name: str) -> list[tuple[str, str, Any]]:
    """``(name, kind, default)`` of what ``cls.name`` takes, looked up the MRO past wrappers that take
    ``*args, **kwargs`` (a wrapper's own default for a parameter wins over the wrapped method's)."""
    overrides: dict[str, Any] = {}
    for klass in cls.__mro__:
        fn = klass.__dict__.get(name)
        if fn is None:
            continue
        params = inspect.signature(fn).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            overrides.update({p.name: p.default for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)})
            continue
        return [(p.name, p.kind.name, overrides.get(p.name, p.default)) for p in params]
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(getattr(cls, name)).parameters.values()]


def test_the_remote_client_takes_the_arguments_and_defaults_of_the_local_catalogue() -> None:
    """Every method both have takes the same arguments with the same defaults (a default that drifts
    would make the same call do something else remotely). A client method forwarding ``**request`` to
    its ``<name>_plan`` method is held to that method's signature."""
    from geocube_dask.client import RemoteGeocube
    from geocube_dask.geocube import Geocube

    compared = 0
    for name, _ in inspect.getmembers(RemoteGeocube, inspect.isfunction):
        if name.startswith("_") or not hasattr(Geocube, name):
            continue
        remote, local = _explicit_signature(RemoteGeocube, name), _explicit_signature(Geocube, name)
        if remote[-1][1] == "VAR_KEYWORD" and local[-1][1] != "VAR_KEYWORD":
            remote = _explicit_signature(RemoteGeocube, f"{name}_plan")
        assert remote == local, name
        compared += 1
    assert compared > 50


def test_a_remote_job_reads_its_state_from_the_server(api: Any, scenes: dict) -> None:
    """A job made through the API is seen the same way locally and remotely; running it runs it on the server."""
    remote = api.connect("write")
    inst = _index(remote, scenes)
    job = remote.delete_datasets_job(inst, records=[remote.list_records(name="utm32")[0]], name="drop-utm32",
                                     execution_level="step-by-step-all")
    local = gd.connect(api.db_url)
    try:
        mirror = local.get_job("drop-utm32")
        assert (job.id, job.name, job.type, job.execution_level) == (
            mirror.id, mirror.name, mirror.type, mirror.execution_level)
        assert (job.state, job.waiting, job.payload) == (mirror.state, mirror.waiting, mirror.payload)
        assert repr(job) == repr(mirror)
        job.run()  # on the server: a step-by-step job stops, waiting, before its first step
        assert job.waiting and job.state is local.get_job("drop-utm32").state
        assert [e.message for e in job.logs] == [e.message for e in local.get_job("drop-utm32").logs]
        assert job.cancel().state in (gd.JobState.ABORTED, gd.JobState.FAILED, gd.JobState.NEW)
        assert job.state is local.get_job("drop-utm32").state
        assert len(remote.list_datasets(instance=inst)) == len(DATES)
    finally:
        local.close()
