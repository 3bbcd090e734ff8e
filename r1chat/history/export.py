"""A conversation as JSON or Markdown (`r1chat history export`)."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime
from typing import Any

from r1chat.core import titles
from r1chat.history.records import Conversation, StoredMessage, iso_time

_DETAILS_END = re.compile(r"</(details)\s*>", re.IGNORECASE)


def to_json(conversation: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    """The conversation as `history export --format json` writes it."""
    out: dict[str, Any] = asdict(conversation)
    del out["turns"]
    out["created_at"] = iso_time(conversation.created_at)
    out["updated_at"] = iso_time(conversation.updated_at)
    out["messages"] = []
    for m in messages:
        item = asdict(m)
        del item["conversation_id"]
        item["created_at"] = iso_time(m.created_at)
        item["updated_at"] = iso_time(m.updated_at)
        out["messages"].append(item)
    return out


def _round(r: dict[str, Any]) -> list[str]:
    """A round of tool calls: its reasoning folded, its text, each call and its result."""
    out = []
    if str(r.get("reasoning") or "").strip():
        body = _DETAILS_END.sub(r"&lt;/\1>", str(r["reasoning"]).strip())
        out += ["<details><summary>Reasoning</summary>", "", body, "", "</details>", ""]
    if str(r.get("text") or "").strip():
        out += [str(r["text"]).rstrip(), ""]
    for c in r.get("calls") or []:
        out += [
            f"**Tool call** `{c.get('name', '')}` `{c.get('arguments', '')}` ({c.get('status')})"
        ]
        if result := str(c.get("result") or "").rstrip():
            out += ["", "```", result.replace("```", "` ` `"), "```"]
        out.append("")
    return out


def to_markdown(conversation: Conversation, messages: list[StoredMessage]) -> str:
    """The conversation as Markdown; each reply's reasoning in a `<details>` block."""
    when = datetime.fromtimestamp(conversation.created_at).strftime("%Y-%m-%d %H:%M")
    meta = " · ".join(x for x in (conversation.model, when) if x)
    lines = [f"# {conversation.display_title}", "", f"*{meta}*", ""]
    for m in messages:
        if m.role == "user":
            lines += ["## You", "", m.content.rstrip(), ""]
            continue
        lines += [f"## Assistant{f' ({m.model})' if m.model else ''}", ""]
        for r in m.tool_rounds or []:
            lines += _round(r)
        if m.reasoning.strip():
            summary = titles.from_stats(m.stats, m.thinking_stopped_by)
            body = _DETAILS_END.sub(r"&lt;/\1>", m.reasoning.strip())
            lines += [f"<details><summary>{summary}</summary>", "", body, "", "</details>", ""]
        if m.content.strip():
            lines += [m.content.rstrip(), ""]
        if note := titles.ending(m.finish_reason):
            lines += [f"*({note})*", ""]
    return "\n".join(lines).rstrip() + "\n"
