"""Palettes: named colour ramps over [0, 1] that variables may refer to for rendering.

Points are stored as a JSON list of ``[value, r, g, b, a]``; validation is :class:`entities.Palette`'s.
A palette used by a variable cannot be deleted (foreign key from ``variables.palette``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import Palette, PalettePoint, check_name
from ..errors import AlreadyExists, DependencyError, InvalidArgument, NotFound
from .db.engine import Connected
from .db.filters import check_pattern, match
from .db.schema import palettes, variables
from .db.sqlutil import integrity_kind


def palette_point(value: Any) -> PalettePoint:
    """A PalettePoint from a PalettePoint or a ``(value, r, g, b[, a])`` tuple."""
    if isinstance(value, PalettePoint):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) not in (4, 5):
        raise InvalidArgument(f"a palette point is (value, r, g, b[, a]), not {value!r}")
    v = value[0]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidArgument(f"a palette point value must be a number in [0, 1], not {v!r}")
    colours = list(value[1:])
    for c in colours:
        if isinstance(c, bool) or not isinstance(c, int):
            raise InvalidArgument(f"palette colour components must be integers 0..255, not {c!r}")
    return PalettePoint(float(v), *colours)


def make_palette(name: Any, points: Any) -> Palette:
    """A validated Palette from a name and points (PalettePoints or tuples)."""
    if isinstance(points, str) or not isinstance(points, Iterable):
        raise InvalidArgument(f"palette points must be a list of (value, r, g, b[, a]), not {points!r}")
    return Palette(check_name(name, "palette name"), tuple(palette_point(p) for p in points))


def _to_json(palette: Palette) -> list[list[float | int]]:
    return [[p.value, p.r, p.g, p.b, p.a] for p in palette.points]


def _from_row(row: Any) -> Palette:
    return Palette(row.name, tuple(PalettePoint(float(v), r, g, b, a) for v, r, g, b, a in row.points))


def load_palette(conn: Connection, name: str) -> Palette:
    """The stored palette ``name``, or NotFound."""
    row = conn.execute(sa.select(palettes).where(palettes.c.name == name)).first()
    if row is None:
        raise NotFound(f"no palette named {name!r}: create it with create_palette(name, points)")
    return _from_row(row)


class PaletteMixin(Connected):
    """Palettes: create (or replace), read, list, delete."""

    def create_palette(self, name: str, points: Iterable[Any], replace: bool = False) -> Palette:
        """Create a palette from PalettePoints or ``(value, r, g, b[, a])`` tuples.

        At least 2 points, first at 0, last at 1, strictly increasing. An existing palette of the same
        name raises AlreadyExists, unless ``replace=True`` (which changes it for every variable using it).
        """
        palette = make_palette(name, points)
        with self._tx() as conn:
            exists = conn.execute(sa.select(palettes.c.name).where(palettes.c.name == palette.name)).first()
            if exists and not replace:
                raise AlreadyExists(f"palette {palette.name!r} already exists: pass replace=True to change it")
            if exists:
                conn.execute(palettes.update().where(palettes.c.name == palette.name).values(points=_to_json(palette)))
            else:
                try:
                    with conn.begin_nested():
                        conn.execute(palettes.insert().values(name=palette.name, points=_to_json(palette)))
                except sa.exc.IntegrityError as exc:
                    if integrity_kind(exc) != "unique":
                        raise
                    raise AlreadyExists(f"palette {palette.name!r} was just created by someone else") from None
        return palette

    def get_palette(self, name: str) -> Palette:
        """The palette named ``name``. Raises NotFound."""
        if not isinstance(name, str):
            raise InvalidArgument(f"a palette name is a string, not {name!r}")
        with self._tx(write=False) as conn:
            return load_palette(conn, name)

    def list_palettes(self, name: str | None = None) -> list[Palette]:
        """Palettes (optionally whose name matches a ``*``/``?`` pattern), by name."""
        stmt = sa.select(palettes).order_by(palettes.c.name)
        if name is not None:
            stmt = stmt.where(match(palettes.c.name, check_pattern(name, "palette name pattern")))
        with self._tx(write=False) as conn:
            return [_from_row(r) for r in conn.execute(stmt)]

    def delete_palette(self, name: str) -> None:
        """Delete a palette. Raises NotFound, or DependencyError while a variable uses it."""
        if not isinstance(name, str):
            raise InvalidArgument(f"a palette name is a string, not {name!r}")
        with self._tx() as conn:
            load_palette(conn, name)
            users = conn.execute(
                sa.select(variables.c.name).where(variables.c.palette == name).order_by(variables.c.name)
            ).scalars().all()
            if users:
                raise DependencyError(
                    f"palette {name!r} is used by variable(s) {', '.join(users)}: "
                    "give them another palette (update_variable) first"
                )
            conn.execute(palettes.delete().where(palettes.c.name == name))
