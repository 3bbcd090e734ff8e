"""Checking a request body's fields, and the error that names the one at fault
(`BadRequest`, in OpenAI's shape), for every route of `r1chat serve`."""

from __future__ import annotations

from typing import Any


class BadRequest(Exception):
    """A request the API refuses (HTTP `status`), in OpenAI's error shape."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.code, self.kind = (
            message,
            param,
            status,
            code,
            kind,
        )

        self.headers: dict[str, str] = {}

    def retry_after(self, seconds: int) -> BadRequest:
        self.headers["Retry-After"] = str(seconds)
        return self

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def boolean_field(table: dict[str, Any], key: str, default: bool, name: str) -> bool:
    """A boolean field of `table` (`default` when absent)."""
    value = table.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false, not {value!r}", name)
    return value


def object_field(value: Any, name: str, keys: set[str]) -> dict[str, Any]:
    """An object field whose keys are among `keys`."""
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object", name)
    if unknown := sorted(set(value) - keys):
        raise BadRequest(
            f"{name}.{unknown[0]} is not supported here (known: {', '.join(sorted(keys))})",
            f"{name}.{unknown[0]}",
        )
    return value
