"""A reply in the Responses API's shape: a `response` object whose `output` holds a
`reasoning` item (the R1 reasoning as `reasoning_text`, and as summary text when
`reasoning.summary` was asked), a `message` item with the answer's `output_text`, and a
`function_call` item per call; streamed as the API's events, each with its
`sequence_number`: `response.created`, `response.output_item.added`, the deltas,
`response.output_item.done`, then `response.completed` (or `response.incomplete` when
`max_output_tokens` cut it). A stored response is kept for `previous_response_id`."""

from __future__ import annotations

import time
import uuid
from typing import Any

from r1chat.core.events import Done
from r1chat.core.messages import Message, ToolCall
from r1chat.host.outcomes import Rendered
from r1chat.serve.dialects.base import Dialect, prompt_object, sse
from r1chat.serve.dialects.openai import error_body
from r1chat.serve.dialects.responses import Store, parse_responses
from r1chat.serve.errors import ApiError
from r1chat.serve.reply import CALLS, REASONING, Piece, ReplyState


def usage(done: Done) -> dict[str, Any]:
    s = done.stats
    output = s.thinking_tokens + s.answer_tokens
    return {
        "input_tokens": s.prompt_tokens,
        "input_tokens_details": {"cached_tokens": s.cached_tokens},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": s.thinking_tokens},
        "total_tokens": s.prompt_tokens + output,
    }


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


class ResponsesWriter:
    """See the module's docstring."""

    media_type = "text/event-stream; charset=utf-8"
    waiting = b": waiting for a free slot\n\n"

    def __init__(self, state: ReplyState, model: str, store: Store) -> None:
        self.state, self.model, self.store = state, model, store
        self.id = _id("resp_")
        self.created_at = int(time.time())
        echo = state.call.echo
        self._summary = echo.get("reasoning", {}).get("summary") is not None
        self._encrypted = "reasoning.encrypted_content" in echo.get("include", ())
        self._items: list[dict[str, Any]] = []  # the output items so far
        self._open: str | None = None  # REASONING or TEXT: the item streaming now
        self._seq = 0

    # -- the stream ----------------------------------------------------------------------

    def opening(self) -> bytes:
        response = self._response("in_progress", None)
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def pieces(self, pieces: list[Piece]) -> bytes:
        out = []
        for kind, value in pieces:
            if kind == CALLS:
                out.append(self._close())
                out += [self._call(c) for c in value]
                continue
            if self._open != kind:
                out += [self._close(), self._begin(kind)]
            item = self._items[-1]
            at = {"item_id": item["id"], "output_index": len(self._items) - 1}
            if kind == REASONING:
                out.append(
                    self._event("response.reasoning_text.delta", **at, content_index=0, delta=value)
                )
                if self._summary:
                    out.append(
                        self._event(
                            "response.reasoning_summary_text.delta",
                            **at,
                            summary_index=0,
                            delta=value,
                        )
                    )
            else:
                out.append(
                    self._event(
                        "response.output_text.delta",
                        **at,
                        content_index=0,
                        delta=value,
                        logprobs=[],
                    )
                )
        return b"".join(out)

    def closing(self, done: Done) -> bytes:
        out = [self.pieces(self.state.flush()), self._close()]
        status = "incomplete" if self.state.finish(done) == "length" else "completed"
        response = self._finished(done, status)
        return b"".join([*out, self._event(f"response.{status}", response=response)])

    def failure(self, error: ApiError) -> bytes:
        response = self._response("failed", None)
        response["error"] = {"code": error.code or error.kind, "message": error.message}
        return self._event("response.failed", response=response)

    # -- whole ---------------------------------------------------------------------------

    def whole(self, done: Done) -> dict[str, Any]:
        state = self.state
        state.flush()
        if state.reasoning:
            self._items.append(self._reasoning_item())
        if state.content:
            self._items.append(self._message_item(_id("msg_")))
        self._items += [self._call_item(c) for c in state.calls]
        status = "incomplete" if state.finish(done) == "length" else "completed"
        return self._finished(done, status)

    def rendered(self, prompt: Rendered) -> dict[str, Any]:
        return prompt_object(self.model, prompt)

    # -- parts ---------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> bytes:
        seq, self._seq = self._seq, self._seq + 1
        return sse({"type": kind, "sequence_number": seq, **fields}, event=kind)

    def _begin(self, kind: str) -> bytes:
        """Open the reasoning item or the message item."""
        part: dict[str, Any]
        self._open = kind
        index = len(self._items)
        if kind == REASONING:
            item: dict[str, Any] = {
                "id": _id("rs_"),
                "type": "reasoning",
                "summary": [],
                "content": [],
            }
            self._items.append(item)
            out = self._event("response.output_item.added", output_index=index, item=item)
            if self._summary:
                part = {"type": "summary_text", "text": ""}
                out += self._event(
                    "response.reasoning_summary_part.added",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part=part,
                )
            return out
        item = {"id": _id("msg_"), "type": "message", "status": "in_progress"}
        item.update(role="assistant", content=[])
        self._items.append(item)
        part = {"type": "output_text", "text": "", "annotations": []}
        at = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return self._event("response.output_item.added", output_index=index, item=item) + (
            self._event("response.content_part.added", **at, part=part)
        )

    def _close(self) -> bytes:
        """Close the item streaming now, with its whole text."""
        kind, self._open = self._open, None
        if kind is None:
            return b""
        index = len(self._items) - 1
        item_id = self._items[index]["id"]
        at = {"item_id": item_id, "output_index": index}
        if kind == REASONING:
            item = self._items[index] = self._reasoning_item(item_id)
            text = "".join(self.state.reasoning)
            out = self._event("response.reasoning_text.done", **at, content_index=0, text=text)
            if self._summary:
                part = {"type": "summary_text", "text": text}
                out += self._event(
                    "response.reasoning_summary_text.done", **at, summary_index=0, text=text
                )
                out += self._event(
                    "response.reasoning_summary_part.done", **at, summary_index=0, part=part
                )
        else:
            item = self._items[index] = self._message_item(item_id)
            part = item["content"][0]
            out = self._event(
                "response.output_text.done", **at, content_index=0, text=part["text"], logprobs=[]
            )
            out += self._event("response.content_part.done", **at, content_index=0, part=part)
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _call(self, call: ToolCall) -> bytes:
        index = len(self._items)
        item = self._call_item(call)
        self._items.append(item)
        at = {"item_id": item["id"], "output_index": index}
        return b"".join(
            [
                self._event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"},
                ),
                self._event("response.function_call_arguments.delta", **at, delta=call.arguments),
                self._event(
                    "response.function_call_arguments.done",
                    **at,
                    arguments=call.arguments,
                    name=call.name,
                ),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        )

    def _reasoning_item(self, item_id: str | None = None) -> dict[str, Any]:
        text = "".join(self.state.reasoning)
        item: dict[str, Any] = {
            "id": item_id or _id("rs_"),
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}] if self._summary else [],
            "content": [{"type": "reasoning_text", "text": text}],
        }
        if self._encrypted:  # opaque to the client, which sends it back; r1chat drops it
            item["encrypted_content"] = "r1chat:" + item["id"]
        return item

    def _message_item(self, item_id: str) -> dict[str, Any]:
        text = "".join(self.state.content)
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    def _call_item(self, call: ToolCall) -> dict[str, Any]:
        return {
            "id": "fc_" + call.id.removeprefix("call_"),
            "type": "function_call",
            "status": "completed",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
        }

    def _response(self, status: str, done: Done | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": list(self._items),
            "usage": usage(done) if done is not None else None,
            **{k: v for k, v in self.state.call.echo.items() if k != "include"},
        }

    def _finished(self, done: Done, status: str) -> dict[str, Any]:
        """The final response object; kept when the request asked to store it."""
        response = self._response(status, done)
        if status == "incomplete":
            response["incomplete_details"] = {"reason": "max_output_tokens"}
        response["r1chat"] = self.state.extension(done)
        state = self.state
        if state.call.echo.get("store"):
            answer = Message("assistant", "".join(state.content), tool_calls=tuple(state.calls))
            self.store.put(self.id, (*state.call.request.messages, answer), response)
        return response


def dialect(store: Store) -> Dialect:
    """The Responses API over `store`."""
    return Dialect(
        lambda body, settings: parse_responses(body, settings, store),
        lambda state, model: ResponsesWriter(state, model, store),
        error_body,
    )
