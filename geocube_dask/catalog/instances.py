"""Instances: versions or flavours of a variable (``master``, ``v2-cloudfree``…) that datasets belong to.

An instance name is unique within its variable and has no ``/``. Metadata is a str→str mapping whose
keys can be added and removed. An instance used by a dataset cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import Instance, Variable, check_name, new_id
from ..errors import AlreadyExists, DependencyError, InvalidArgument, NotFound
from .db.engine import Connected
from .db.filters import check_pattern, match
from .db.schema import datasets, instances, variables
from .db.sqlutil import integrity_kind
from .refs import instance_id
from .variables import load_variable

INSTANCE_COLUMNS = (instances.c.id, instances.c.variable_id, instances.c.name, instances.c.metadata)


def instance_from_row(row: Any) -> Instance:
    """An Instance from a row selected with INSTANCE_COLUMNS."""
    return Instance(id=row.id, variable_id=row.variable_id, name=row.name, metadata=dict(row.metadata))


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, str]:
    """Validate instance metadata: a mapping of non-empty str keys to str values."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(f"{what} must be a mapping of str to str, not {metadata!r}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"{what}: keys must be non-empty strings, not {key!r}")
        if not isinstance(value, str):
            raise InvalidArgument(f"{what}: the value of {key!r} must be a string, not {value!r}")
    return dict(metadata)


def load_instance(conn: Connection, ref: Instance | str, *, for_update: bool = False) -> Instance:
    """An Instance from an Instance or its id. Raises NotFound."""
    iid = instance_id(ref)
    stmt = sa.select(*INSTANCE_COLUMNS).where(instances.c.id == iid)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"no instance with id {iid!r}: see list_instances()")
    return instance_from_row(row)


def _unique_name_error(exc: sa.exc.IntegrityError, name: str, variable: str) -> AlreadyExists:
    if integrity_kind(exc) != "unique":
        raise exc
    return AlreadyExists(f"variable {variable!r} already has an instance named {name!r}: choose another name")


class InstanceMixin(Connected):
    """Instances: instantiate, read, list, update (name, metadata), delete."""

    def instantiate(self, variable: Variable | str, name: str, metadata: Mapping[str, str] | None = None) -> Instance:
        """Create an instance of ``variable`` (Variable, id or name). Raises AlreadyExists for a taken name."""
        name = check_name(name, "instance name", allow_slash=False)
        meta = check_metadata(metadata)
        with self._tx() as conn:
            var = load_variable(conn, variable)
            instance = Instance(new_id(), var.id, name, meta)
            try:
                with conn.begin_nested():
                    conn.execute(
                        instances.insert().values(id=instance.id, variable_id=var.id, name=name, metadata=meta)
                    )
            except sa.exc.IntegrityError as exc:
                raise _unique_name_error(exc, name, var.name) from None
        return instance

    def get_instance(self, instance: Instance | Variable | str, name: str | None = None) -> Instance:
        """``get_instance(instance_or_id)`` or ``get_instance(variable, name)``. Raises NotFound."""
        with self._tx(write=False) as conn:
            if name is None:
                return load_instance(conn, instance)  # type: ignore[arg-type]
            var = load_variable(conn, instance)
            row = conn.execute(
                sa.select(*INSTANCE_COLUMNS).where(instances.c.variable_id == var.id, instances.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"variable {var.name!r} has no instance named {name!r}")
            return instance_from_row(row)

    def list_instances(self, variable: Variable | str | None = None, name: str | None = None) -> list[Instance]:
        """Instances (of ``variable`` if given; name matching a ``*``/``?`` pattern), by variable then name."""
        stmt = (
            sa.select(*INSTANCE_COLUMNS)
            .select_from(instances.join(variables, variables.c.id == instances.c.variable_id))
            .order_by(variables.c.name, instances.c.name)
        )
        if name is not None:
            stmt = stmt.where(match(instances.c.name, check_pattern(name, "instance name pattern")))
        with self._tx(write=False) as conn:
            if variable is not None:
                stmt = stmt.where(instances.c.variable_id == load_variable(conn, variable).id)
            return [instance_from_row(r) for r in conn.execute(stmt)]

    def update_instance(
        self,
        instance: Instance | str,
        *,
        name: str | None = None,
        add_metadata: Mapping[str, str] | None = None,
        remove_metadata: Iterable[str] | None = None,
    ) -> Instance:
        """Rename an instance and/or add metadata keys (overwriting) and remove some (absent ones ignored)."""
        if name is not None:
            name = check_name(name, "instance name", allow_slash=False)
        add = check_metadata(add_metadata, "add_metadata")
        if remove_metadata is None:
            remove: list[str] = []
        elif isinstance(remove_metadata, str) or not isinstance(remove_metadata, Iterable):
            raise InvalidArgument(f"remove_metadata must be a list of keys, not {remove_metadata!r}")
        else:
            remove = list(remove_metadata)
        with self._tx() as conn:
            current = load_instance(conn, instance, for_update=True)
            meta = {k: v for k, v in current.metadata.items() if k not in remove}
            meta.update(add)
            values: dict[str, Any] = {"metadata": meta}
            if name is not None:
                values["name"] = name
            try:
                with conn.begin_nested():
                    conn.execute(instances.update().where(instances.c.id == current.id).values(**values))
            except sa.exc.IntegrityError as exc:
                var = load_variable(conn, current.variable_id)
                raise _unique_name_error(exc, name or current.name, var.name) from None
            return load_instance(conn, current.id)

    def delete_instance(self, instance: Instance | str) -> None:
        """Delete an instance. DependencyError while datasets use it."""
        with self._tx() as conn:
            current = load_instance(conn, instance)
            count = conn.execute(
                sa.select(sa.func.count()).select_from(datasets).where(datasets.c.instance_id == current.id)
            ).scalar_one()
            if count:
                raise DependencyError(
                    f"instance {current.name!r} is used by {count} dataset(s): delete them first"
                )
            try:
                with conn.begin_nested():
                    conn.execute(instances.delete().where(instances.c.id == current.id))
            except sa.exc.IntegrityError as exc:
                raise DependencyError(f"instance {current.name!r} was just given a dataset: not deleted") from exc
