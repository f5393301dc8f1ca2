"""Who the server is and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..deps import GC, require

router = APIRouter(tags=["meta"])


class Info(BaseModel):
    backend: str
    scope: str
    max_page_size: int


@router.get("/info", response_model=Info)
def info(request: Request, gc: GC, scope: Annotated[str, require("read")]) -> Info:
    """The catalogue's backend, the scope of the caller's token and the server's maximum page size."""
    return Info(backend=gc.backend, scope=scope, max_page_size=request.app.state.max_page_size)
