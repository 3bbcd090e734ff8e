"""What `r1chat ask` sends: the prompt words, piped stdin, and files given with `-f`.

Each file becomes a fenced block with its name (the language from its extension), in
the order given, before the prompt: the question comes last, where the model reads it
after the material. `-f -` reads stdin as a file; otherwise piped stdin follows the
prompt words after a blank line. Files and stdin alike must be UTF-8 text and no longer
than the context could use (`core.request.input_limit`); `-f` takes regular files only
(a named pipe or a device would block or never end).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from r1chat.core.attachments import File, read_file, read_text
from r1chat.core.errors import BadSchema, UsageError
from r1chat.core.schemas import check


def read_schema(value: str | None, json_object: bool) -> str | None:
    """The JSON schema `--schema` gives (JSON text, or a file holding it), `--json-object`'s
    (any JSON object), or None; one line when it is not a JSON object, or one an answer
    cannot be held to."""
    if json_object:
        return '{"type": "object"}'
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        text = value
    else:
        text = read_file(value, 1 << 20, flag="--schema").text
    try:
        schema = json.loads(text)
    except ValueError as e:
        raise UsageError(f"--schema: not JSON ({e})") from None
    if not isinstance(schema, dict):
        raise UsageError("--schema must be a JSON schema: a JSON object")
    try:
        check(schema)
    except BadSchema as e:
        raise UsageError(f"--schema: {e}") from None
    return json.dumps(schema)


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str  # what is sent: the file blocks, then the question
    question: str  # the prompt words and piped stdin
    files: list[File]

    @property
    def title(self) -> str:
        """What the history calls the conversation: the question, else the file names."""
        return self.question or ", ".join(f.name for f in self.files)


def read_prompt(words: list[str], files: list[str], limit: int) -> Prompt:
    """The file blocks, then the prompt words, then stdin when it is piped and not taken
    by `-f -`; each input at most `limit` bytes."""
    blocks = [read_file(name, limit) for name in files]
    prompt = " ".join(words).strip()
    piped = ""
    if "-" not in files and not sys.stdin.isatty():
        piped = read_text(sys.stdin.buffer, "stdin", limit)
    question = "\n\n".join(part for part in (prompt, piped.strip("\n")) if part.strip())
    if not question and not blocks:
        raise UsageError('no prompt: give one as arguments or on stdin, e.g. r1chat ask "Hi"')
    text = "\n\n".join([*(f.block for f in blocks), *([question] if question else [])])
    return Prompt(text, question, blocks)
