"""`ApiError`: a request the server refuses or cannot answer, as every dialect sees it (an
HTTP status, a message, the field at fault); each dialect writes it in its own shape
(OpenAI's is `body()`, the one for routes of no dialect)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """HTTP `status` with `message`; `param` names the request field at fault, `code` and
    `kind` are OpenAI's error code and type; `log` is what the server's log says (the
    message, unless the client's words differ)."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
        kind: str = "invalid_request_error",
        log: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.code, self.kind = (
            message,
            param,
            status,
            code,
            kind,
        )
        self.log = log or message
        self.headers: dict[str, str] = {}

    def retry_after(self, seconds: int) -> ApiError:
        self.headers["Retry-After"] = str(seconds)
        return self

    def body(self) -> dict[str, Any]:
        """OpenAI's error shape."""
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def quoted(text: str, most: int = 80) -> str:
    """A client's text as an error message names it: quoted, at most `most` characters
    of it (a 5,000-character model name is not echoed whole)."""
    if len(text) > most:
        return repr(text[: most - 1]) + "…"
    return repr(text)
