"""What every route of `r1chat serve` shares (`Server`), and the one path a reply takes:
a dialect parses the body into a `Call`, the dispatcher sends its ticket to the model host,
a `ReplyResponse` writes what comes back in the dialect's shape."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from r1chat.config.settings import Settings
from r1chat.serve.body import read_json
from r1chat.serve.dialects.base import Dialect
from r1chat.serve.dispatch import Dispatcher, Ticket
from r1chat.serve.names import Names
from r1chat.serve.reply import ReplyState
from r1chat.serve.responses import Log, ReplyResponse


@dataclass(frozen=True)
class Server:
    """What every route shares: the dispatcher, the names clients may use, the settings
    requests start from, the API key check and the log."""

    dispatcher: Dispatcher
    names: Names
    settings: Settings
    authorize: Callable[[Request], None]
    log: Log

    async def reply(self, request: Request, dialect: Dialect, body: Any = None) -> Response:
        """Parse `body` (else the request's) with `dialect`, send the ticket, answer with its
        reply."""
        self.authorize(request)
        if body is None:
            body = await read_json(request)
        call = dialect.parse(body, self.settings)
        model = self.names.resolve(call.model)
        what = f"{request.method} {request.url.path}"
        ticket = Ticket(call, model, what, asyncio.get_running_loop())
        state = ReplyState(call, ticket.cancel)
        writer = dialect.writer(state, model)
        self.dispatcher.submit(ticket)
        return ReplyResponse(ticket, state, writer, dialect, self.log)
