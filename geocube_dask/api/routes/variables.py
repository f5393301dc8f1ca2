"""Variables and their consolidation settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ...entities import ConsolidationParams, Variable
from ..deps import GC, page_limit, require
from ..wire import Anything, Body, DFormatIn, Number, OptDFormatIn, OptNumber, OptStr, Str, StrList

router = APIRouter(tags=["variables"])
READ, WRITE = require("read"), require("write")


class VariableIn(Body):
    name: Str
    dformat: DFormatIn
    bands: StrList
    unit: Str = ""
    description: Str = ""
    palette: OptStr = None
    resampling: Str = "near"


class VariableChange(Body):
    model_config = {"extra": "allow"}  # bands/dformat are refused by the catalogue with its own message
    name: OptStr = None
    unit: OptStr = None
    description: OptStr = None
    palette: OptStr = None
    resampling: OptStr = None

    def args(self, *skip: str) -> dict:
        return {**super().args(*skip), **(self.model_extra or {})}


class ConsolidationIn(Body):
    dformat: OptDFormatIn = None
    exponent: Number = 1
    compression: Str = "lossless"
    max_error: OptNumber = None
    creation_options: Anything = None
    resampling: OptStr = None


@router.post("/variables", status_code=201, response_model=Variable, dependencies=[WRITE])
def create_variable(body: VariableIn, gc: GC) -> Variable:
    """Create a variable (see `Geocube.create_variable`)."""
    return gc.create_variable(**body.args())


@router.get("/variables", response_model=list[Variable], dependencies=[READ])
def list_variables(
    request: Request, gc: GC, name: str | None = None, case_insensitive: bool = False,
    limit: Annotated[int | None, Query(ge=1)] = None, page: Annotated[int, Query(ge=0)] = 0,
) -> list[Variable]:
    """Variables whose name matches the `*`/`?` pattern, by name, one page (at most the server's maximum)."""
    return gc.list_variables(name, case_insensitive, page_limit(request, limit, page), page)


@router.get("/variables/{variable:path}", response_model=Variable, dependencies=[READ])
def get_variable(variable: str, gc: GC) -> Variable:
    """A variable by id or name."""
    return gc.get_variable(variable)


@router.patch("/variables/{variable:path}", response_model=Variable, dependencies=[WRITE])
def update_variable(variable: str, body: VariableChange, gc: GC) -> Variable:
    """Change a variable's name, unit, description, palette or resampling."""
    return gc.update_variable(variable, **body.args())


@router.delete("/variables/{variable:path}", status_code=204, dependencies=[WRITE])
def delete_variable(variable: str, gc: GC) -> None:
    """Delete a variable and its instances."""
    gc.delete_variable(variable)


@router.get("/consolidation/{variable:path}", response_model=ConsolidationParams, dependencies=[READ])
def get_consolidation_params(variable: str, gc: GC) -> ConsolidationParams:
    """How a variable is stored by consolidation."""
    return gc.get_consolidation_params(variable)


@router.put("/consolidation/{variable:path}", response_model=ConsolidationParams, dependencies=[WRITE])
def configure_consolidation(variable: str, body: ConsolidationIn, gc: GC) -> ConsolidationParams:
    """Set how a variable is stored by consolidation (see `Geocube.configure_consolidation`)."""
    return gc.configure_consolidation(variable, **body.args())


