"""Turn "an entity or its id" arguments into ids.

Public methods accept ``Record``/``Instance``/``Variable`` objects or their ids (variables also their
name); these helpers check the shape of such arguments before any SQL runs. Ids are UUID strings: an
argument that is not one cannot name anything, so it raises :class:`NotFound` like an unknown id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from ..entities import Dataset, Instance, Record, Variable
from ..errors import InvalidArgument, NotFound

# the largest id a BigInteger column holds: a larger integer names nothing
MAX_ID = 2**63 - 1


def name_arg(value: Any, what: str) -> str:
    """A name to look up (a layout, a grid…): any string (an unknown one is the caller's NotFound), else
    InvalidArgument before any SQL runs."""
    if not isinstance(value, str):
        raise InvalidArgument(f"a {what} name is a string, not {value!r}")
    return value


def uuid_str(value: Any, what: str) -> str:
    """Canonical form of a UUID id, or NotFound (an id that is not a UUID names nothing)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} id must be a string, not {value!r}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(f"no {what} with id {value!r}: ids are UUIDs, e.g. from list_{what}s()") from None


def record_id(value: Record | str, what: str = "record") -> str:
    """The id of a Record or a record id (NotFound if it cannot be one)."""
    return uuid_str(value.id if isinstance(value, Record) else value, what)


def instance_id(value: Instance | str) -> str:
    """The id of an Instance or an instance id (NotFound if it cannot be one)."""
    return uuid_str(value.id if isinstance(value, Instance) else value, "instance")


def record_ids(values: Any, what: str = "records") -> list[str]:
    """A list of record ids from an iterable of Records/ids (duplicates kept once, order kept)."""
    if isinstance(values, str | Record) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{what} must be a list of records or record ids, not {values!r}")
    return list(dict.fromkeys(record_id(v) for v in values))


def variable_key(value: Any) -> tuple[str, str]:
    """``("id", uuid)`` or ``("name", name)`` for a Variable, a variable id or a variable name."""
    if isinstance(value, Variable):
        return "id", uuid_str(value.id, "variable")
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"give a variable, a variable id or a variable name, not {value!r}")
    try:
        return "id", str(uuid.UUID(value))
    except ValueError:
        return "name", value


def dataset_ids(values: Any) -> list[int]:
    """A list of dataset ids (integers) from an iterable of ids or Datasets."""
    if isinstance(values, int | Dataset) or not isinstance(values, Iterable):
        raise InvalidArgument(f"give a list of dataset ids, not {values!r}")
    out = []
    for v in values:
        v = v.id if isinstance(v, Dataset) else v
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidArgument(f"dataset ids are integers, not {v!r}")
        if not -MAX_ID <= v <= MAX_ID:
            raise NotFound(f"no dataset with id {v}: ids are at most {MAX_ID}")
        out.append(v)
    return list(dict.fromkeys(out))
