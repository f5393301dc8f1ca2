"""Admin-only routes: tidy, dataset mapping updates, API tokens."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ...catalog.tidy import TidyReport
from ...entities import ApiToken, Dataset
from ..deps import GC, require
from ..wire import Body, Bool, OptDFormatIn, OptNumber, OptStr, Str, loose

router = APIRouter(tags=["admin"])
ADMIN = require("admin")


class TidyIn(Body):
    dry_run: Bool = False
    aois: Bool = True
    records: Bool = True
    containers: Bool = True
    instances: Bool = False
    variables: Bool = False
    layouts: Bool = False
    grids: Bool = False


class MappingIn(Body):
    datasets: loose({"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}) = None
    instance: OptStr = None
    records: loose({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}) = None
    dformat: OptDFormatIn = None
    real_min: OptNumber = None
    real_max: OptNumber = None
    exponent: OptNumber = None


class TokenIn(Body):
    scope: Str
    name: Str = ""


class NewToken(BaseModel):
    token: ApiToken
    secret: str


@router.post("/tidy", response_model=TidyReport, dependencies=[ADMIN])
def tidy(body: TidyIn, gc: GC) -> TidyReport:
    """Delete what nothing uses any more (or with `dry_run`, say what would be)."""
    return gc.tidy(**body.args())


@router.post("/datasets/mapping", response_model=list[Dataset], dependencies=[ADMIN])
def update_dataset_mapping(body: MappingIn, gc: GC) -> list[Dataset]:
    """Change how datasets' stored values map to the variable's (dformat, real range, exponent)."""
    return gc.update_dataset_mapping(**body.args())


@router.post("/tokens", status_code=201, response_model=NewToken, dependencies=[ADMIN])
def create_token(body: TokenIn, gc: GC) -> NewToken:
    """Create an API token: the secret is in this answer only."""
    token, secret = gc.create_token(**body.args())
    return NewToken(token=token, secret=secret)


@router.get("/tokens", response_model=list[ApiToken], dependencies=[ADMIN])
def list_tokens(gc: GC, include_revoked: bool = False) -> list[ApiToken]:
    """The API tokens (never their secrets)."""
    return gc.list_tokens(include_revoked)


@router.delete("/tokens/{token_id}", response_model=ApiToken, dependencies=[ADMIN])
def revoke_token(token_id: str, gc: GC) -> ApiToken:
    """Revoke an API token."""
    return gc.revoke_token(token_id)
