"""Files given to the model as text: `ask -f FILE` and the chat's `@path`.

A file becomes a fenced block with its name (the language from its extension). Text
files must be UTF-8; a PDF gives its text (pypdf); anything else binary, over the size
limit, or not a regular file is one clear line.
"""

from __future__ import annotations

import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from r1chat.core.errors import UsageError
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


def read_file(name: str, limit: int, flag: str = "-f", base: Path | None = None) -> File:
    """A text file's contents (`-`: stdin; a PDF's text), or one clear line: missing,
    unreadable, not a regular file, binary, not UTF-8 or over `limit` bytes. A relative
    `name` is found under `base` (default: the working folder)."""
    what = f"{flag}{name}" if flag.endswith("@") else f"{flag} {name}"
    if name == "-":
        return File("stdin", read_text(sys.stdin.buffer, f"{flag} -: stdin", limit))
    path = Path(name).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        kind = path.stat().st_mode
        if stat.S_ISDIR(kind):
            raise UsageError(f"{what}: is a folder, not a file")
        if not stat.S_ISREG(kind):
            raise UsageError(
                f"{what}: is {_KINDS.get(stat.S_IFMT(kind), 'not a regular file')}"
                "; only files can be read (pipe other input to ask -f - instead)"
            )
        with path.open("rb") as f:
            if path.suffix.lower() == ".pdf":
                return File(name, pdf_text(f, what, limit))
            return File(name, read_text(f, what, limit))
    except FileNotFoundError:
        raise UsageError(f"{what}: no such file") from None
    except OSError as e:
        raise UsageError(f"{what}: cannot read it ({e.strerror})") from None


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
    if data.startswith(_IMAGES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise UsageError(f"{what}: an image (R1 reads text: text files and PDFs only)")
    if b"\0" in data[:SNIFF]:
        raise UsageError(f"{what}: binary data (text files and PDFs only)")
    return decode(data, what)


_IMAGES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def pdf_text(stream: BinaryIO, what: str, limit: int) -> str:
    """The text of a PDF (pypdf), page after page; one line when it cannot be read or
    holds no text (a scan), or its text is over `limit` bytes."""
    import pypdf

    try:
        pages = [page.extract_text() or "" for page in pypdf.PdfReader(stream).pages]
    except Exception as e:  # pypdf's errors for a damaged or encrypted file are many
        raise UsageError(f"{what}: not a PDF r1chat can read ({one(e)})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UsageError(f"{what}: a PDF with no text in it (a scan? R1 reads text only)")
    if len(text.encode()) > limit:
        raise UsageError(
            f"{what}: more than {limit:,} bytes of text, more than the context could use"
        )
    return text


def one(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


MENTION = re.compile(r"(?<!\S)@(\S+)")
"""`@path` in a chat prompt: an `@` that begins a word (`@@` is a literal `@`)."""


@dataclass(frozen=True, slots=True)
class Attached:
    """A chat prompt with its `@path` files: `text` is what is sent (the file blocks, then
    the prompt), `prompt` the prompt as typed (`@@` read as `@`)."""

    text: str
    prompt: str
    files: tuple[File, ...]


def attach(typed: str, limit: int, base: Path | None = None) -> Attached:
    """The files `typed` mentions as `@path`, read (each at most `limit` bytes) and put
    before it, as `ask -f` does; one line for a mention that is no readable file."""
    names = [_mentioned(m, base) for m in MENTION.findall(typed) if not m.startswith("@")]
    files = tuple(read_file(n, limit, flag="@", base=base) for n in dict.fromkeys(names))
    prompt = re.sub(r"(?<!\S)@@", "@", typed)
    return Attached("\n\n".join([*(f.block for f in files), prompt]), prompt, files)


_BLOCK = re.compile(
    r"(?P<name>[^\n]+):\n(?P<fence>```+)[^\n`]*\n(?P<body>.*?)\n(?P=fence)(?:\n\n|$)", re.S
)
"""One `File.block` (its fence is longer than any run of backticks in the text)."""


def split(text: str) -> Attached:
    """A sent prompt read back (a chat reopened, an edit): its leading file blocks and the
    prompt after them (no files when it does not begin with one)."""
    files, at = [], 0
    while (m := _BLOCK.match(text, at)) is not None:
        files.append(File(m["name"], m["body"] + "\n"))
        at = m.end()
    return Attached(text, text[at:], tuple(files))


def _mentioned(word: str, base: Path | None) -> str:
    """The path an `@word` names: the word, or without a sentence's closing punctuation
    ("about @notes.md." names notes.md)."""
    bare = word.rstrip(".,;:!?)]}'\"")
    if bare and bare != word and not _exists(word, base) and _exists(bare, base):
        return bare
    return word


def _exists(name: str, base: Path | None) -> bool:
    path = Path(name).expanduser()
    return (path if base is None or path.is_absolute() else base / path).exists()


def completions(partial: str, base: Path | None = None, most: int = 50) -> list[str]:
    """Paths that complete `partial` (after an `@`), folders with a trailing `/`, sorted;
    hidden ones only when `partial`'s last part starts with a dot."""
    folder_text, slash, stem = partial.rpartition("/")
    folder = Path(folder_text + slash or ".").expanduser()
    if base is not None and not folder.is_absolute():
        folder = base / folder
    prefix = folder_text + slash
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        hidden = entry.name.startswith(".") and not stem.startswith(".")
        if entry.name.startswith(stem) and not hidden:
            out.append(prefix + entry.name + ("/" if entry.is_dir() else ""))
            if len(out) == most:
                break
    return out
