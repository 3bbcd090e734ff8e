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
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from r1chat.core.errors import BadSchema, UsageError
from r1chat.core.schemas import check
from r1chat.core.utf8 import decode

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".jsx": "jsx",
    ".rs": "rust",
    ".go": "go",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".java": "java",
    ".kt": "kotlin",
    ".swift": "swift",
    ".rb": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "zsh",
    ".fish": "fish",
    ".ps1": "powershell",
    ".sql": "sql",
    ".html": "html",
    ".css": "css",
    ".scss": "scss",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".xml": "xml",
    ".md": "markdown",
    ".tex": "latex",
    ".r": "r",
    ".lua": "lua",
    ".dockerfile": "dockerfile",
    ".diff": "diff",
    ".patch": "diff",
    ".ini": "ini",
    ".cfg": "ini",
}
SNIFF = 8 << 10  # bytes looked at for NUL bytes


@dataclass(frozen=True, slots=True)
class File:
    name: str  # as given (`-` is shown as `stdin`)
    text: str

    @property
    def block(self) -> str:
        """`name`, then the text in a fence longer than any backtick run inside it."""
        language = LANGUAGES.get(Path(self.name).suffix.lower(), "")
        if Path(self.name).name.lower() in ("dockerfile", "makefile"):
            language = Path(self.name).name.lower()
        fence = "```"
        while fence in self.text:
            fence += "`"
        body = self.text if self.text.endswith("\n") else self.text + "\n"
        return f"{self.name}:\n{fence}{language}\n{body}{fence}"


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


def read_file(name: str, limit: int, flag: str = "-f") -> File:
    """A text file's contents (`-`: stdin), or one clear line: missing, unreadable, not a
    regular file, binary, not UTF-8 or over `limit` bytes."""
    if name == "-":
        return File("stdin", read_text(sys.stdin.buffer, f"{flag} -: stdin", limit))
    path = Path(name).expanduser()
    try:
        kind = path.stat().st_mode
        if stat.S_ISDIR(kind):
            raise UsageError(f"{flag} {name}: is a folder, not a file")
        if not stat.S_ISREG(kind):
            raise UsageError(
                f"{flag} {name}: is {_KINDS.get(stat.S_IFMT(kind), 'not a regular file')}"
                "; ask reads files (pipe other input to - instead)"
            )
        with path.open("rb") as f:
            return File(name, read_text(f, f"{flag} {name}", limit))
    except FileNotFoundError:
        raise UsageError(f"{flag} {name}: no such file") from None
    except OSError as e:
        raise UsageError(f"{flag} {name}: cannot read it ({e.strerror})") from None


_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def read_text(stream: BinaryIO, what: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8 text from `stream`; one line when it is binary, not
    UTF-8 or longer."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UsageError(
            f"{what}: more than {limit:,} bytes, more than the context could "
            "use (raise --ctx, or pass less)"
        )
    if b"\0" in data[:SNIFF]:
        raise UsageError(f"{what}: binary data (ask takes text)")
    return decode(data, what)


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
