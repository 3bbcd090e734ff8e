"""What `r1chat ask` sends: the prompt words, piped stdin, and files given with `-f`.

Each file becomes a fenced block with its name (the language from its extension), in
the order given, before the prompt: the question comes last, where the model reads it
after the material. `-f -` reads stdin as a file; otherwise piped stdin follows the
prompt words after a blank line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from r1chat.core.errors import UsageError

LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".ts": "typescript", ".tsx": "tsx", ".jsx": "jsx", ".rs": "rust", ".go": "go",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".java": "java",
    ".kt": "kotlin", ".swift": "swift", ".rb": "ruby", ".php": "php", ".cs": "csharp",
    ".sh": "bash", ".bash": "bash", ".zsh": "zsh", ".fish": "fish", ".ps1": "powershell",
    ".sql": "sql", ".html": "html", ".css": "css", ".scss": "scss", ".json": "json",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".xml": "xml", ".md": "markdown",
    ".tex": "latex", ".r": "r", ".lua": "lua", ".dockerfile": "dockerfile",
    ".diff": "diff", ".patch": "diff", ".ini": "ini", ".cfg": "ini",
}  # fmt: skip
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


def read_file(name: str) -> File:
    """A text file's contents, or one clear line: missing, unreadable or binary."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).expanduser().read_bytes()
    except FileNotFoundError:
        raise UsageError(f"-f {name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"-f {name}: is a folder, not a file") from None
    except OSError as e:
        raise UsageError(f"-f {name}: cannot read it ({e.strerror})") from None
    shown = "stdin" if name == "-" else name
    if b"\0" in data[:SNIFF]:
        raise UsageError(f"-f {shown}: a binary file (ask takes text files)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"-f {shown}: not UTF-8 text (ask takes text files)") from None
    return File(shown, text)


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str  # what is sent: the file blocks, then the question
    question: str  # the prompt words and piped stdin
    files: list[File]

    @property
    def title(self) -> str:
        """What the history calls the conversation: the question, else the file names."""
        return self.question or ", ".join(f.name for f in self.files)


def read_prompt(words: list[str], files: list[str]) -> Prompt:
    """The file blocks, then the prompt words, then stdin when it is piped and not taken
    by `-f -`."""
    blocks = [read_file(name) for name in files]
    prompt = " ".join(words).strip()
    piped = ""
    if "-" not in files and not sys.stdin.isatty():
        piped = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    question = "\n\n".join(part for part in (prompt, piped.strip("\n")) if part.strip())
    if not question and not blocks:
        raise UsageError('no prompt: give one as arguments or on stdin, e.g. r1chat ask "Hi"')
    text = "\n\n".join([*(f.block for f in blocks), *([question] if question else [])])
    return Prompt(text, question, blocks)
