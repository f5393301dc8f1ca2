"""Variables: what a cube's values mean (data format, bands, unit, palette, default resampling).

A variable's ``bands`` and ``dformat`` never change once created (every dataset of every instance was
indexed against them); its name, unit, description, palette and resampling may. Deleting a variable
deletes its instances, and is refused while any dataset uses one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import DFormat, Variable, check_name, check_resampling, new_id
from ..errors import AlreadyExists, DependencyError, InvalidArgument, NotFound
from .db.engine import Connected
from .db.filters import check_paging, check_pattern, match, paged
from .db.schema import datasets, instances, variables
from .db.sqlutil import integrity_kind
from .palettes import load_palette
from .refs import variable_key

VARIABLE_COLUMNS = tuple(variables.c)


def variable_from_row(row: Any) -> Variable:
    """A Variable from a row of the variables table."""
    dformat = DFormat(row.dtype, row.nodata, row.min, row.max)
    return Variable(
        id=row.id,
        name=row.name,
        dformat=dformat,
        bands=tuple(row.bands),
        unit=row.unit,
        description=row.description,
        palette=row.palette,
        resampling=row.resampling,
    )


def load_variable(conn: Connection, ref: Any) -> Variable:
    """A Variable from a Variable, its id or its name. Raises NotFound."""
    kind, key = variable_key(ref)
    column = variables.c.id if kind == "id" else variables.c.name
    row = conn.execute(sa.select(*VARIABLE_COLUMNS).where(column == key)).first()
    if row is None and kind == "id" and not isinstance(ref, Variable):
        # A name may look like a UUID: fall back on names.
        row = conn.execute(sa.select(*VARIABLE_COLUMNS).where(variables.c.name == ref)).first()
    if row is None:
        raise NotFound(f"no variable {kind} {key!r}: see list_variables()")
    return variable_from_row(row)


def check_bands(bands: Any) -> tuple[str, ...]:
    """At least one band; several bands must all be named, with distinct names."""
    if isinstance(bands, str) or not isinstance(bands, Sequence):
        raise InvalidArgument(f"bands must be a list of band names, e.g. ['red', 'nir'], not {bands!r}")
    names = tuple(bands)
    if not names:
        raise InvalidArgument("a variable needs at least one band")
    for b in names:
        if not isinstance(b, str):
            raise InvalidArgument(f"band names are strings, not {b!r}")
    if len(names) > 1:
        if any(not b.strip() for b in names):
            raise InvalidArgument(f"with several bands, every band needs a name: {list(names)}")
        if len(set(names)) != len(names):
            raise InvalidArgument(f"band names must be distinct: {list(names)}")
    return names


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, not {value!r}")
    return value


def _check_palette(conn: Connection, palette: str | None, n_bands: int, name: str) -> None:
    if palette is None:
        return
    if n_bands != 1:
        raise InvalidArgument(f"variable {name!r} has {n_bands} bands: a palette is only for one-band variables")
    load_palette(conn, _text(palette, "palette"))


class VariableMixin(Connected):
    """Variables: create, read, list, update (never bands or dformat), delete."""

    def create_variable(
        self,
        name: str,
        dformat: Any,
        bands: Sequence[str],
        unit: str = "",
        description: str = "",
        palette: str | None = None,
        resampling: str = "near",
    ) -> Variable:
        """Create a variable.

        ``dformat``: ``(dtype, nodata, min, max)`` (or DFormat / mapping): min < max inside the dtype range,
        nodata inside it or NaN for floats. ``bands``: band names (one band may be unnamed: ``[""]``).
        ``palette``: name of an existing palette, one-band variables only. Raises AlreadyExists for a
        taken name.
        """
        name = check_name(name, "variable name")
        palette = palette or None
        fmt = DFormat.parse(dformat)
        names = check_bands(bands)
        unit, description = _text(unit, "unit"), _text(description, "description")
        resampling = check_resampling(resampling)
        variable = Variable(new_id(), name, fmt, names, unit, description, palette, resampling)
        with self._tx() as conn:
            _check_palette(conn, palette, len(names), name)
            try:
                with conn.begin_nested():
                    conn.execute(
                        variables.insert().values(
                            id=variable.id, name=name, unit=unit, description=description, dtype=fmt.dtype,
                            nodata=fmt.nodata, min=fmt.min, max=fmt.max, bands=list(names), palette=palette,
                            resampling=resampling,
                        )
                    )
            except sa.exc.IntegrityError as exc:
                if integrity_kind(exc) != "unique":
                    raise
                raise AlreadyExists(f"a variable named {name!r} already exists: choose another name") from None
        return variable

    def get_variable(self, variable: Variable | str) -> Variable:
        """A variable by id or name (or a Variable, re-read). Raises NotFound."""
        with self._tx(write=False) as conn:
            return load_variable(conn, variable)

    def list_variables(
        self,
        name: str | None = None,
        case_insensitive: bool = False,
        limit: int | None = None,
        page: int = 0,
    ) -> list[Variable]:
        """Variables whose name matches the ``*``/``?`` pattern (all by default), ordered by name."""
        lim, offset = check_paging(limit, page)
        if not isinstance(case_insensitive, bool):
            raise InvalidArgument(f"case_insensitive must be True or False, not {case_insensitive!r}")
        stmt = sa.select(*VARIABLE_COLUMNS).order_by(variables.c.name)
        if name is not None:
            stmt = stmt.where(match(variables.c.name, check_pattern(name, "variable name pattern"), case_insensitive))
        with self._tx(write=False) as conn:
            return [variable_from_row(r) for r in conn.execute(paged(stmt, lim, offset))]

    def update_variable(
        self,
        variable: Variable | str,
        *,
        name: str | None = None,
        unit: str | None = None,
        description: str | None = None,
        palette: str | None = None,
        resampling: str | None = None,
        **forbidden: Any,
    ) -> Variable:
        """Change a variable's name, unit, description, palette or resampling (None: unchanged).

        ``palette=""`` removes the palette. ``bands`` and ``dformat`` never change: asking raises
        InvalidArgument (create a new variable instead).
        """
        if forbidden:
            never = sorted(set(forbidden) & {"bands", "dformat"})
            if never:
                raise InvalidArgument(
                    f"the {' and '.join(never)} of a variable never change (datasets were indexed against them):"
                    " create a new variable instead"
                )
            raise InvalidArgument(
                f"unknown field(s) {sorted(forbidden)}: a variable's name, unit, description, palette and "
                "resampling can change"
            )
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = check_name(name, "variable name")
        if unit is not None:
            values["unit"] = _text(unit, "unit")
        if description is not None:
            values["description"] = _text(description, "description")
        if resampling is not None:
            values["resampling"] = check_resampling(resampling)
        if palette is not None:
            values["palette"] = _text(palette, "palette") or None
        with self._tx() as conn:
            current = load_variable(conn, variable)
            if "palette" in values:
                _check_palette(conn, values["palette"], len(current.bands), current.name)
            if values:
                try:
                    with conn.begin_nested():
                        conn.execute(variables.update().where(variables.c.id == current.id).values(**values))
                except sa.exc.IntegrityError as exc:
                    if integrity_kind(exc) != "unique":
                        raise
                    raise AlreadyExists(f"a variable named {values['name']!r} already exists") from None
            return load_variable(conn, current.id)

    def delete_variable(self, variable: Variable | str) -> None:
        """Delete a variable and its instances. DependencyError while a dataset uses one of its instances."""
        with self._tx() as conn:
            current = load_variable(conn, variable)
            used = conn.execute(
                sa.select(instances.c.name, sa.func.count())
                .select_from(instances.join(datasets, datasets.c.instance_id == instances.c.id))
                .where(instances.c.variable_id == current.id)
                .group_by(instances.c.name)
                .order_by(instances.c.name)
            ).all()
            if used:
                detail = ", ".join(f"{n} ({c} datasets)" for n, c in used)
                raise DependencyError(
                    f"variable {current.name!r} cannot be deleted: its instance(s) {detail} are used by datasets."
                    " Delete those datasets first."
                )
            try:
                with conn.begin_nested():
                    conn.execute(variables.delete().where(variables.c.id == current.id))
            except sa.exc.IntegrityError as exc:
                raise DependencyError(
                    f"variable {current.name!r} was just given a dataset: not deleted, check and try again"
                ) from exc
