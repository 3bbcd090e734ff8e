"""llama.cpp through llama-cpp-python's ctypes bindings alone: a model and its context.

`import llama_cpp` also imports llama-cpp-python's high-level `Llama`, which brings
numpy, jinja2 and diskcache, and its load compiles every chat template in the file: over
0.1 s of every launch, for nothing r1chat uses (its prompts are its own,
`prompt.PromptBuilder`). `lib()` imports the bindings (`llama_cpp.llama_cpp`) and the
schema-to-grammar converter (plain Python) without the package's `__init__`; `Model` is
what a reply needs of a loaded model.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

_import_lock = threading.Lock()
_bindings: Any = None
_INT32_MAX = 0x7FFFFFFF  # n_gpu_layers: every layer


def lib() -> Any:
    """llama-cpp-python's `llama_cpp.llama_cpp` (llama.cpp's C API), its backends
    initialised. A later `import llama_cpp` still runs the whole package, over these
    same bindings."""
    global _bindings
    with _import_lock:
        if _bindings is None:
            _bindings = sys.modules.get("llama_cpp.llama_cpp") or _import_bindings()
            _bindings.llama_backend_init()
        return _bindings


def _import_bindings() -> Any:
    if "llama_cpp" in sys.modules:  # (the whole package is being imported)
        return importlib.import_module("llama_cpp.llama_cpp")
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None:
        raise ModuleNotFoundError("No module named 'llama_cpp'", name="llama_cpp")
    sys.modules["llama_cpp"] = importlib.util.module_from_spec(spec)  # not run
    try:
        importlib.import_module("llama_cpp.llama_grammar")
        return importlib.import_module("llama_cpp.llama_cpp")
    finally:
        del sys.modules["llama_cpp"]


def grammar_tools() -> Any:
    """llama-cpp-python's `llama_cpp.llama_grammar` (`LlamaGrammar`, `SchemaConverter`)."""
    lib()
    return importlib.import_module("llama_cpp.llama_grammar")


class LoadFailed(Exception):
    """llama.cpp refused the file (its log says why)."""


class Model:
    """A GGUF loaded by llama.cpp with a context of `n_ctx` tokens for `sequences`
    sequences (each with a KV cache of its own); `eval` feeds sequence 0, and `cached`
    is what its cache holds. `gpu_layers`: layers offloaded (-1 all); `repack`: llama.cpp's
    repacked CPU kernels (its "extra buffer types", off as `--no-repack`); `kv_type`:
    a ggml type id for the cache's keys and values; `flash_attn`: auto (llama.cpp's
    choice: on wherever the layers' device has the kernel), on or off."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        n_batch: int,
        threads: int,
        gpu_layers: int,
        repack: bool = True,
        sequences: int = 1,
        kv_type: int = 1,
        flash_attn: str = "auto",
    ) -> None:
        c = self._lib = lib()
        if not Path(path).is_file():
            raise LoadFailed(f"no such file: {path}")
        params = c.llama_model_default_params()
        params.n_gpu_layers = _INT32_MAX if gpu_layers < 0 else gpu_layers
        params.use_extra_bufts = repack
        self.model = c.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise LoadFailed("llama.cpp could not load the model")
        self.vocab = c.llama_model_get_vocab(self.model)
        self.n_vocab = int(c.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(c.llama_model_n_ctx_train(self.model))
        self.n_layer = int(c.llama_model_n_layer(self.model))
        self.bos, self.eos = int(c.llama_vocab_bos(self.vocab)), int(c.llama_vocab_eos(self.vocab))
        self.n_batch = min(n_ctx, n_batch)
        context = c.llama_context_default_params()
        context.n_ctx = n_ctx
        context.n_batch = context.n_ubatch = self.n_batch
        context.n_threads = context.n_threads_batch = threads
        context.type_k = context.type_v = kv_type
        context.flash_attn_type = {
            "auto": c.LLAMA_FLASH_ATTN_TYPE_AUTO,
            "on": c.LLAMA_FLASH_ATTN_TYPE_ENABLED,
            "off": c.LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }[flash_attn]
        if sequences > 1:
            context.n_seq_max, context.kv_unified = sequences, False
        self.ctx = c.llama_init_from_model(self.model, context)
        if not self.ctx:
            c.llama_model_free(self.model)
            raise LoadFailed("llama.cpp could not create the context")
        self.n_ctx = min(n_ctx, int(c.llama_n_ctx(self.ctx)))
        """The tokens asked for (llama.cpp pads its context to a multiple of 256)."""
        self.memory = c.llama_get_memory(self.ctx)
        self._batch = c.llama_batch_init(self.n_batch, 0, 1)
        self.cached: list[int] = []
        self._in_kv = 0  # sequence 0's positions the KV cache may hold (the last decode's end)
        self.seed = 0

    def tokenize(self, text: bytes, *, add_bos: bool, special: bool) -> list[int]:
        """`text`'s tokens; `special`: spelled special tokens are read as such."""
        size = len(text) + 2
        while True:
            ids = (ctypes.c_int32 * size)()
            n = self._lib.llama_tokenize(self.vocab, text, len(text), ids, size, add_bos, special)
            if n >= 0:
                return ids[:n]
            size = -n

    @property
    def logits_fresh(self) -> bool:
        """Whether the last decode's logits are those of the cache's last token."""
        return 0 < self._in_kv == len(self.cached)

    def keep_prefix(self, tokens: list[int], most: int) -> int:
        """Keep the cache's prefix in common with `tokens`, at most `most` of them (the
        rest is dropped at the next `eval`); returns its length."""
        del self.cached[min(common_prefix(self.cached, tokens), most) :]
        return len(self.cached)

    def eval(self, tokens: list[int]) -> None:
        """Decode `tokens` into sequence 0 after `cached` (what the cache holds past it is
        dropped first), in batches of `n_batch`; the logits are the last token's."""
        c, batch = self._lib, self._batch
        if self._in_kv > len(self.cached):  # (not per token: only after a rewind)
            c.llama_memory_seq_rm(self.memory, 0, len(self.cached), -1)
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            n_past = len(self.cached)
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = n_past + i
                batch.seq_id[i][0] = 0
                batch.n_seq_id[i] = 1
                batch.logits[i] = False
            batch.logits[len(chunk) - 1] = True
            self._in_kv = n_past + len(chunk)  # (what a failed decode may have left too)
            if (status := c.llama_decode(self.ctx, batch)) != 0:
                raise RuntimeError(f"llama_decode returned {status}")
            self.cached += chunk

    def warm_up(self) -> None:
        """Decode one token, then forget it (the next decode drops it from the cache): the
        first decode touches every weight (mapped, not read, at load) and sizes llama.cpp's
        buffers, as llama-server's start does."""
        self.keep_prefix([], 0)
        self.eval([max(self.bos, 0)])
        self.cached.clear()

    def close(self) -> None:
        """Free the context and the model (once)."""
        c = self._lib
        if self.ctx:
            c.llama_batch_free(self._batch)
            c.llama_free(self.ctx)
            c.llama_model_free(self.model)
            self.ctx = self.model = None


def common_prefix(a: list[int], b: list[int], chunk: int = 256) -> int:
    """The length of the prefix `a` and `b` share: compared `chunk` at a time (in C),
    then token by token in the chunk that differs (a 16k-token prompt: ~0.05 ms, not 0.6)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + chunk] == b[i : i + chunk]:
        i += chunk
    end = min(n, i + chunk)
    while i < end and a[i] == b[i]:
        i += 1
    return min(i, n)
