"""Rows read straight from a history file's pages, for `recover` when SQLite cannot walk
the file's b-trees (a file cut short, a lost root or interior page).

Every cell of every table leaf page is decoded by SQLite's record format (the newest copy
of a page in the `-wal` beside the file wins) and matched to the `conversations` and
`messages` tables by its shape. Pages on the freelist are skipped (and deleted rows are
zeroed, `PRAGMA secure_delete`), so a deleted chat does not come back. A row whose
overflow pages were lost comes back cut, and is counted so. Of several copies of one row
(a page freed by an update), the latest saved wins.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEAF = 0x0D  # a table b-tree leaf page
WAL_MAGIC = (0x377F0682, 0x377F0683)
CUT = "\n\n[the rest was lost with the damaged part of the history file]"
"""Ends a text whose last part was on a lost page."""
Row = dict[str, Any]


@dataclass
class Scanned:
    conversations: dict[int, Row] = field(default_factory=dict)
    messages: dict[int, Row] = field(default_factory=dict)
    cut: set[int] = field(default_factory=set)  # ids of messages that came back cut
    sequence: dict[str, int] = field(default_factory=dict)  # sqlite_sequence's rows


def scan(path: Path) -> Scanned:
    """The rows of the history file at `path` (and its WAL) that its pages still hold."""
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    page_size, reserved = _page_size(data, wal)
    count = -(-len(data) // page_size)  # (a last page cut short: its cells that are left)
    pages = {
        n + 1: data[n * page_size : (n + 1) * page_size].ljust(page_size, b"\0")
        for n in range(count)
    }
    pages.update(_wal_pages(wal, page_size))
    usable = page_size - reserved
    out = Scanned()
    for number in sorted(set(pages) - _freelist(pages, usable)):
        for rowid, values, cut in _cells(pages, number, usable):
            _take(out, rowid, values, cut)
    return out


def _page_size(data: bytes, wal: Path) -> tuple[int, int]:
    """The page size and reserved bytes a page ends with (from the header; else the WAL's;
    else SQLite's default)."""
    if len(data) >= 100 and data.startswith(b"SQLite format 3\x00"):
        size = struct.unpack(">H", data[16:18])[0]
        size = 65536 if size == 1 else size
        if size >= 512 and size & (size - 1) == 0:
            return size, data[20]
    if wal.exists():
        with wal.open("rb") as f:
            head = f.read(32)
        if len(head) == 32 and struct.unpack(">I", head[:4])[0] in WAL_MAGIC:
            return struct.unpack(">I", head[8:12])[0], 0
    return 4096, 0


def _wal_pages(wal: Path, page_size: int) -> dict[int, bytes]:
    """The latest copy of each page in the WAL (frames of its current salt only)."""
    if not wal.exists():
        return {}
    data = wal.read_bytes()
    if len(data) < 32 or struct.unpack(">I", data[:4])[0] not in WAL_MAGIC:
        return {}
    salt = data[16:24]
    pages: dict[int, bytes] = {}
    frame = 24 + page_size
    for at in range(32, len(data) - frame + 1, frame):
        if data[at + 8 : at + 16] != salt:
            break
        number = struct.unpack(">I", data[at : at + 4])[0]
        pages[number] = data[at + 24 : at + frame]
    return pages


def _freelist(pages: dict[int, bytes], usable: int) -> set[int]:
    """The pages the header's freelist names (those it can still reach)."""
    first = pages.get(1, b"")
    if len(first) < 40:
        return set()
    free: set[int] = set()
    trunk = struct.unpack(">I", first[32:36])[0]
    while trunk and trunk not in free and trunk in pages:
        free.add(trunk)
        page = pages[trunk]
        count = min(struct.unpack(">I", page[4:8])[0], (usable - 8) // 4)
        free.update(struct.unpack(f">{count}I", page[8 : 8 + 4 * count]))
        trunk = struct.unpack(">I", page[:4])[0]
    return free


def _cells(pages: dict[int, bytes], number: int, usable: int) -> list[tuple[int, list[Any], bool]]:
    """(rowid, values, cut) of each cell on table leaf page `number`; none for any other."""
    page = pages[number]
    at = 100 if number == 1 else 0
    if len(page) < at + 8 or page[at] != LEAF:
        return []
    count = struct.unpack(">H", page[at + 3 : at + 5])[0]
    out = []
    for i in range(min(count, (usable - at - 8) // 2)):
        pointer = struct.unpack(">H", page[at + 8 + 2 * i : at + 10 + 2 * i])[0]
        try:
            out.append(_cell(pages, page, pointer, usable))
        except (IndexError, ValueError, struct.error):
            continue  # a cell a damaged page garbled
    return out


def _cell(
    pages: dict[int, bytes], page: bytes, at: int, usable: int
) -> tuple[int, list[Any], bool]:
    size, at = _varint(page, at)
    rowid, at = _varint(page, at)
    local = _local_size(size, usable)
    payload = page[at : at + local]
    if local < size:  # the rest is on a chain of overflow pages
        chain = [payload]
        got, next_page = local, struct.unpack(">I", page[at + local : at + local + 4])[0]
        seen: set[int] = set()
        while got < size and next_page in pages and next_page not in seen:
            seen.add(next_page)
            overflow = pages[next_page]
            part = overflow[4 : 4 + min(usable - 4, size - got)]
            chain.append(part)
            got += len(part)
            next_page = struct.unpack(">I", overflow[:4])[0]
        payload = b"".join(chain)
    values, cut = _record(payload)
    return rowid, values, cut or len(payload) < size


def _local_size(size: int, usable: int) -> int:
    """How much of a payload of `size` bytes a table leaf cell holds on its own page."""
    most = usable - 35
    if size <= most:
        return size
    least = (usable - 12) * 32 // 255 - 23
    local = least + (size - least) % (usable - 4)
    return local if local <= most else least


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at + i + 1
    raise ValueError("varint")  # pragma: no cover - the loop always returns


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _record(payload: bytes) -> tuple[list[Any], bool]:
    """A record's values, as far as `payload` holds them; and whether it was cut (a text
    cut short keeps what it has)."""
    header, at = _varint(payload, 0)
    if not 0 < header <= len(payload):
        raise ValueError("record header")
    types = []
    while at < header:
        serial, at = _varint(payload, at)
        types.append(serial)
    values: list[Any] = []
    at = header
    for serial in types:
        if serial in (0, 8, 9):
            values.append(None if serial == 0 else serial - 8)
            continue
        if serial in _INT_SIZES:
            n = _INT_SIZES[serial]
            if at + n > len(payload):
                return values, True
            values.append(int.from_bytes(payload[at : at + n], "big", signed=True))
        elif serial == 7:
            if at + 8 > len(payload):
                return values, True
            values.append(struct.unpack(">d", payload[at : at + 8])[0])
            n = 8
        elif serial >= 12:
            n = (serial - 12) // 2
            raw = payload[at : at + n]
            text = serial % 2 == 1
            values.append(raw.decode("utf-8", "ignore") if text else raw)
            if len(raw) < n:
                return values, True
        else:
            raise ValueError("serial type")
        at += n
    return values, False


MESSAGE_COLUMNS = (
    "conversation_id",
    "role",
    "content",
    "reasoning",
    "model",
    "sampling",
    "stats",
    "finish_reason",
    "thinking_stopped_by",
    "created_at",
    "updated_at",
    "parent_id",
    "tool_rounds",
)
"""A message row's columns after its id, in the order the file stores them (a row last
written before schema 4 lacks the last two)."""
_CONVERSATION = ("title", "model", "created_at", "updated_at", "source", "current_id")


def _take(out: Scanned, rowid: int, values: list[Any], cut: bool) -> None:
    """File the record under the table its shape says."""
    if len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], int):
        out.sequence[values[0]] = max(values[1], out.sequence.get(values[0], 0))
        return
    if not values or values[0] is not None:  # both tables' first column is the rowid's
        return
    rest = values[1:]
    if _a_message(rest, cut):
        row = dict(zip(MESSAGE_COLUMNS, rest, strict=False))
        if cut and (last := MESSAGE_COLUMNS[len(rest) - 1]) in ("content", "reasoning"):
            row[last] += CUT
        _keep(out.messages, rowid, row, cut, out.cut)
    elif _a_conversation(rest, cut):
        _keep(out.conversations, rowid, dict(zip(_CONVERSATION, rest, strict=False)), cut, set())


def _a_message(v: list[Any], cut: bool) -> bool:
    whole = len(MESSAGE_COLUMNS)
    if not (whole - 2 <= len(v) <= whole or (cut and len(v) >= 3)):
        return False
    if not isinstance(v[0], int) or v[1] not in ("user", "assistant"):
        return False
    texts = all(isinstance(x, str) for x in v[2:5])
    ids = all(isinstance(x, int) or x is None for x in v[11:12])
    ids = ids and all(isinstance(x, str) or x is None for x in v[12:13])
    return texts and ids and all(isinstance(x, int | float) for x in v[9:11])


def _a_conversation(v: list[Any], cut: bool) -> bool:
    if not (len(v) in (4, 5, 6) or (cut and len(v) >= 1)):
        return False
    texts = all(isinstance(x, str) for x in v[:2]) and all(isinstance(x, str) for x in v[4:5])
    ids = all(isinstance(x, int) or x is None for x in v[5:6])
    return texts and ids and all(isinstance(x, int | float) for x in v[2:4])


def _keep(rows: dict[int, Row], rowid: int, row: Row, cut: bool, cuts: set[int]) -> None:
    """Keep the copy of row `rowid` saved last (of one save, a whole copy)."""
    old = rows.get(rowid)
    if old is not None and _rank(old, rowid in cuts) >= _rank(row, cut):
        return
    rows[rowid] = row
    if cut:
        cuts.add(rowid)
    else:
        cuts.discard(rowid)


def _rank(row: Row, cut: bool) -> tuple[float, bool]:
    return float(row.get("updated_at") or 0), not cut
