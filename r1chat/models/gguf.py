"""Read a GGUF file's header (metadata and tensor table) without loading llama.cpp.

Used to give clear errors before llama.cpp sees a bad file (not a GGUF, truncated) and
to size models for the hardware (layers, heads, context) in milliseconds.
"""

from __future__ import annotations

import mmap
import re
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1chat.core import r1
from r1chat.core.errors import R1ChatError

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# ggml tensor types: (bytes per block, elements per block), for the size check.
_TYPE_SIZES = {
    0: (4, 1),
    1: (2, 1),
    2: (18, 32),
    3: (20, 32),
    6: (22, 32),
    7: (24, 32),
    8: (34, 32),
    9: (36, 32),
    10: (84, 256),
    11: (110, 256),
    12: (144, 256),
    13: (176, 256),
    14: (210, 256),
    15: (292, 256),
    16: (66, 256),
    17: (74, 256),
    18: (98, 256),
    19: (50, 256),
    20: (18, 32),
    21: (110, 256),
    22: (82, 256),
    23: (136, 256),
    24: (1, 1),
    25: (2, 1),
    26: (4, 1),
    27: (8, 1),
    28: (8, 1),
    29: (56, 256),
    30: (2, 1),
    34: (54, 256),
    35: (66, 256),
    39: (17, 32),
}
_KEEP_ARRAY = 64  # arrays longer than this keep only their length
_LENGTH = struct.Struct("<Q")


class GGUFError(R1ChatError):
    """The file is not a usable GGUF."""


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """A long metadata array, kept as its length only (e.g. the vocabulary)."""

    count: int


@dataclass(slots=True)
class GGUFInfo:
    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensor_count: int = 0
    data_bytes: int = 0  # tensor data in this file, per the tensor table (0 if unknown)
    file_size: int = 0
    r1_markers: frozenset[str] = frozenset()  # which of R1's markers the vocabulary holds
    tensors: dict[str, tuple[int, ...]] = field(default_factory=dict)  # name -> dims

    @property
    def r1_vocab(self) -> bool:
        """Whether its vocabulary has all of R1's markers (the local engine then builds
        its prompts in R1's format, not with its template)."""
        return self.r1_markers == R1_MARKERS

    @property
    def prompt_format(self) -> str:
        """How r1chat builds this model's prompts: R1's format when its vocabulary has
        all of R1's markers (as the local engine decides), else its own template."""
        if self.r1_vocab:
            return "R1 (its vocabulary has the R1 markers)"
        return "its own chat template" if self.chat_template else "ChatML (it has no template)"

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    def arch_key(self, key: str, default: Any = None) -> Any:
        """An architecture-scoped key, e.g. `arch_key("block_count")`."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def block_count(self) -> int:
        return int(self.arch_key("block_count", 0))

    @property
    def chat_template(self) -> str | None:
        t = self.metadata.get("tokenizer.chat_template")
        return t if isinstance(t, str) else None


R1_MARKERS = frozenset((r1.USER, r1.ASSISTANT, r1.THINK_OPEN, r1.THINK_CLOSE, r1.EOS))


class _Reader:
    def __init__(self, data: bytes | mmap.mmap, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path
        self.markers: set[str] = set()  # R1 markers seen in the long string arrays

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise EOFError
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.data):
            raise EOFError
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.take("<I"), self.take("<Q")
            if count <= _KEEP_ARRAY:
                return [self.value(etype) for _ in range(count)]
            if etype in _SCALARS:
                self.pos += struct.calcsize(_SCALARS[etype]) * count
            elif etype == _STRING:
                self._skip_strings(count)
            else:
                for _ in range(count):
                    self.value(etype)
            if self.pos > len(self.data):
                raise EOFError
            return ArrayInfo(count)
        raise GGUFError(f"{self.path}: unknown metadata type {vtype} (corrupt GGUF?)")

    def _skip_strings(self, count: int) -> None:
        """Step over a long string array (the vocabulary: milliseconds, nothing decoded),
        noting which of R1's markers it holds."""
        data, pos, unpack = self.data, self.pos, _LENGTH.unpack_from
        start = pos
        try:
            for _ in range(count):
                pos += 8 + unpack(data, pos)[0]
        except struct.error:
            raise EOFError from None
        for marker in R1_MARKERS:  # a marker is an element: its length comes before it
            raw = marker.encode()
            element = _LENGTH.pack(len(raw)) + raw
            if data.find(element, start, pos) >= 0:
                self.markers.add(marker)
        self.pos = pos


def read_gguf(path: str | Path) -> GGUFInfo:
    """Parse the header of `path`; raise GGUFError with a one-line reason if unusable.
    The file is mapped, not read: only the header's pages are touched."""
    path = Path(path)
    try:
        found = path.stat()
        if not stat.S_ISREG(found.st_mode) and not stat.S_ISDIR(found.st_mode):
            raise GGUFError(f"{path} is not a file but {_kind(found.st_mode)}")
        size = found.st_size
        with path.open("rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except FileNotFoundError:
        raise GGUFError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise GGUFError(f"{path} is a directory, not a GGUF file") from None
    except OSError as e:
        raise GGUFError(f"cannot read {path}: {e.strerror}") from None
    try:
        return _parse(data, path, size)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _parse(data: bytes | mmap.mmap, path: Path, size: int) -> GGUFInfo:
    if data[:4] != MAGIC:
        raise GGUFError(f"{path} is not a GGUF file")
    r = _Reader(data, path)
    r.pos = 4
    try:
        version = r.take("<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {version}")
        info = GGUFInfo(path, version, file_size=size)
        info.tensor_count = r.take("<Q")
        for _ in range(r.take("<Q")):
            key = r.string()
            info.metadata[key] = r.value(r.take("<I"))
        info.r1_markers = frozenset(r.markers)
        info.data_bytes = _tensor_extent(r, info)
    except EOFError:
        raise GGUFError(f"{path} is truncated (the header ends early)") from None
    if info.data_bytes > _NO_MODEL_IS_THIS_BIG:
        raise GGUFError(
            f"{path} is damaged: its tensor table points {info.data_bytes:,} bytes into the "
            "file, far past any model; get a fresh copy"
        )
    if info.data_bytes and size < info.data_bytes:
        raise GGUFError(
            f"{path} is truncated: {size:,} bytes of {info.data_bytes:,} "
            "(an interrupted download? pull it again)"
        )
    if problem := implausible(info):
        raise GGUFError(f"{path.name} is not a model llama.cpp can load: {problem}")
    return info


MAX_LAYERS = 1024  # the deepest GGUF models have about 130
MAX_CONTEXT = 1 << 24  # 16M tokens: past every model's trained context
_BLK = re.compile(r"^blk\.(\d+)\.")


def implausible(info: GGUFInfo) -> str | None:
    """Why the header's figures cannot describe the weights it holds (figures llama.cpp
    would divide by, allocate for or loop over, checked against the tensor table), or
    None. Files without an architecture (not models) are left alone."""
    if not info.architecture or not info.tensors:
        return None
    layers = info.arch_key("block_count")
    if not isinstance(layers, int) or not 1 <= layers <= MAX_LAYERS:
        return f"its header says {_n(layers)} layers (a model has 1 to {MAX_LAYERS:,})"
    held = {int(m.group(1)) for name in info.tensors if (m := _BLK.match(name))}
    split = int(info.metadata.get("split.count", 1) or 1) > 1  # shards hold some layers
    if held and not split and layers > max(held) + 1:
        return f"its header says {layers:,} layers but the file holds weights for {max(held) + 1:,}"
    context = info.arch_key("context_length")
    if context is not None and not (isinstance(context, int) and 1 <= context <= MAX_CONTEXT):
        return f"its header says a context of {_n(context)} tokens"
    if not any(name.endswith("attn_q.weight") for name in info.tensors):
        return None  # no attention (a recurrent model): no heads to check
    heads = _ints(info.arch_key("attention.head_count"))
    kv_heads = _ints(info.arch_key("attention.head_count_kv")) or heads
    if not heads or max(heads) < 1:  # (per-layer counts: some layers may have none)
        return f"its header says {_n(info.arch_key('attention.head_count'))} attention heads"
    if not kv_heads or max(kv_heads) < 1:
        said = _n(info.arch_key("attention.head_count_kv"))
        return f"its header says {said} KV heads (attention.head_count_kv)"
    if any(
        k and h % k for h, k in zip(heads, kv_heads, strict=False)
    ):  # (hybrids have 0 in some layers)
        return f"its {heads[0]} attention heads do not share {kv_heads[0]} KV heads evenly"
    embd = info.arch_key("embedding_length")
    embedding = info.tensors.get("token_embd.weight")
    if not isinstance(embd, int) or embd < 1 or (embedding and embedding[0] != embd):
        held_embd = f" but its embeddings are {embedding[0]:,} wide" if embedding else ""
        return f"its header says an embedding length of {_n(embd)}{held_embd}"
    return None


def _ints(value: Any) -> list[int]:
    """A count, or per-layer counts, as a list (empty when it is not a whole number)."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else repr(value)


def _kind(mode: int) -> str:
    kinds = {stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket"}
    return kinds.get(stat.S_IFMT(mode), "a device")


def not_a_model_file(path: Path) -> str | None:
    """Why `path`, which exists, cannot hold a model (a folder, a device, a pipe); None for
    a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return f"{path} is a directory, not a GGUF file"
    if not stat.S_ISREG(mode):
        return f"{path} is not a file but {_kind(mode)}"
    return None


_NO_MODEL_IS_THIS_BIG = 1 << 44  # 16 TiB: the biggest GGUF (671B at f16) is ~1.3 TB


def _tensor_extent(r: _Reader, info: GGUFInfo) -> int:
    """Bytes the file must have to hold every tensor (0 when a type is unknown)."""
    end, known = 0, True
    for _ in range(info.tensor_count):
        name = r.string()
        n_dims = r.take("<I")
        if n_dims > 4:
            raise GGUFError(f"{info.path} is damaged: tensor {name!r} has {n_dims} dimensions")
        dims = [r.take("<Q") for _ in range(n_dims)]
        info.tensors[name] = tuple(dims)
        ttype, offset = r.take("<I"), r.take("<Q")
        if ttype not in _TYPE_SIZES:
            known = False
            continue
        n = 1
        for d in dims:
            n *= d
        block_bytes, block_elems = _TYPE_SIZES[ttype]
        end = max(end, offset + n * block_bytes // block_elems)
    align = int(info.metadata.get("general.alignment", 32))
    data_start = -(-r.pos // align) * align
    return data_start + end if known and info.tensor_count else 0
