"""Checking a request body's fields, for every dialect: a field of the wrong type is an
`ApiError` that names it."""

from __future__ import annotations

from typing import Any

from r1chat.serve.errors import ApiError


def body_object(body: Any) -> dict[str, Any]:
    """The body, which must be a JSON object."""
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    return body


def boolean_field(table: dict[str, Any], key: str, default: bool, name: str) -> bool:
    """A boolean field of `table` (`default` when absent)."""
    value = table.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(f"{name} must be true or false, not {value!r}", name)
    return value


def object_field(value: Any, name: str, keys: set[str]) -> dict[str, Any]:
    """An object field whose keys are among `keys`."""
    if not isinstance(value, dict):
        raise ApiError(f"{name} must be an object", name)
    if unknown := sorted(set(value) - keys):
        raise ApiError(
            f"{name}.{unknown[0]} is not supported here (known: {', '.join(sorted(keys))})",
            f"{name}.{unknown[0]}",
        )
    return value


def text_field(table: dict[str, Any], key: str, name: str) -> str | None:
    """A string field of `table` (None when absent)."""
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(f"{name} must be a string", name)
    return value
