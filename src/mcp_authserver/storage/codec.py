"""Records to JSON and back, for backends that store bytes.

Type-directed from the dataclass fields, so a new field needs no codec change; unknown keys in
stored data are ignored and missing ones take their defaults, so records written by an older
or newer version of the library still load during a rolling deployment.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def encode(record: Any) -> str:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"))


def decode(cls: type[T], data: str | bytes) -> T:
    return _build(cls, json.loads(data))


def _build(cls: type[T], values: dict[str, Any]) -> T:
    hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in values:
            kwargs[field.name] = _value(hints[field.name], values[field.name])
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _value(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        return tuple(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)
