"""A request's body, read as JSON the server can trust: valid, within the door's bound
(`serve.door`), not absurdly nested, no text that is not Unicode."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from r1chat.serve.door import TooLarge
from r1chat.serve.errors import ApiError


async def read_json(request: Request) -> Any:
    """The body as JSON: valid, not absurdly nested, no text that is not Unicode."""
    try:
        raw = await request.body()
    except TooLarge as e:
        raise ApiError(str(e), status=413, code="request_too_large") from None
    except ClientDisconnect:
        raise ApiError("the client went away while it sent the request", status=499) from None
    try:
        body = json.loads(raw)
    except RecursionError:
        raise ApiError("the request body is nested too deeply to be a request") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(f"the request body is not valid JSON ({e})") from None
    if (where := _lone_surrogate(body, "")) is not None:
        raise ApiError(
            f"{where or 'the body'} is not valid Unicode text (a lone surrogate such as \\ud800)",
            where or None,
        )
    return body


def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where in a parsed body a string holds half of a surrogate pair (which no UTF-8
    tokenizer can take), as `messages[0].content`."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _lone_surrogate(k, where) or _lone_surrogate(v, _at(where, k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (found := _lone_surrogate(v, f"{where}[{i}]")) is not None:
                return found
    return None


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
