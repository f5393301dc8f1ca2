"""The auth matrix of every route, generated from the app's route table: no token → 401, a lower scope →
403, the route's scope (and above) → through (whatever the request then gives, never 401/403)."""

from __future__ import annotations

import re
import tempfile
from typing import Any

import httpx
import pytest

from geocube_dask.api import create_app
from geocube_dask.api.deps import route_table
from geocube_dask.entities import SCOPES

# the docs, and the viewer's page and files (no data: the page asks for a token and sends it with its requests)
PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
          "/viewer", "/viewer/", "/viewer/static/{name:path}"}


def _routes() -> list[tuple[str, str, str | None]]:
    """(method, path, scope) of every route of the app (the catalogue behind it does not matter)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(db=f"sqlite:///{tmp}/routes.db")
        table = route_table(app)
        app.state.gc.close()
    out = []
    for info in table:
        for method in sorted(info.methods - {"HEAD"}):
            out.append((method, info.path, info.scope))
    return out


ROUTES = _routes()


def _concrete(path: str) -> str:
    """A request path for a route pattern: every parameter filled with a value of the right shape."""
    def value(m: re.Match[str]) -> str:
        name, convertor = m.group(1), m.group(2)
        return "1" if name.endswith("_id") or convertor == "int" else "some/name" if convertor == "path" else "name"

    return re.sub(r"\{(\w+)(?::(\w+))?\}", value, path)


def test_every_route_but_the_docs_needs_a_scope() -> None:
    unguarded = [(m, p) for m, p, scope in ROUTES if scope is None and p not in PUBLIC]
    assert unguarded == []
    assert {scope for _, _, scope in ROUTES} >= {"read", "write", "admin"}


@pytest.mark.parametrize(("method", "path", "scope"), [r for r in ROUTES if r[2] is not None],
                         ids=[f"{m} {p}" for m, p, s in ROUTES if s is not None])
def test_auth_matrix(local_api: Any, method: str, path: str, scope: str) -> None:
    url = local_api.url + _concrete(path)
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None

    def call(token: str | None) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.request(method, url, json=body, headers=headers, timeout=60)

    for token, want in ((None, 401), ("gct_not-a-token", 401)):
        response = call(token)
        assert response.status_code == want, response.text
        assert response.json()["error"] == "AuthenticationError"
    rank = SCOPES.index(scope)
    for held in SCOPES[:rank]:
        response = call(local_api.tokens[held])
        assert response.status_code == 403, (held, response.text)
        assert response.json()["error"] == "PermissionDenied"
    for held in SCOPES[rank:]:
        response = call(local_api.tokens[held])
        assert response.status_code not in (401, 403), (held, response.text)
        assert response.status_code < 500, response.text


def test_a_revoked_token_stops_working(local_api: Any) -> None:
    admin = local_api.connect("admin")
    token, secret = admin.create_token("read", name="short-lived")
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(local_api.url + "/variables", headers=headers).status_code == 200
    assert admin.revoke_token(token.id).revoked is not None
    response = httpx.get(local_api.url + "/variables", headers=headers)
    assert response.status_code == 401 and response.json()["error"] == "AuthenticationError"
    assert token.id not in [t.id for t in admin.list_tokens()]
