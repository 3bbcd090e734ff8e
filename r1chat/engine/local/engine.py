"""The in-process engine: a GGUF model run by llama.cpp through llama-cpp-python.

Generation samples with `constrained.Sampler` (the batched engine's chain too) and
decodes UTF-8 incrementally (constant work per token); the prompt is evaluated in chunks
so a long paste can be cancelled; the KV cache keeps whatever prefix the next prompt
shares with the last one.
"""

from __future__ import annotations

import codecs
import contextlib
import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from r1chat.core import r1
from r1chat.core.errors import PromptTooLong, R1ChatError
from r1chat.core.events import Delta, EngineCaps, EngineInfo, PromptProgress
from r1chat.core.request import Control, Reading, Request, Sampling, prompt_problem
from r1chat.core.tools import Tools
from r1chat.engine.base import RenderedPrompt
from r1chat.engine.local import llama_log
from r1chat.engine.local.constrained import constrained
from r1chat.engine.local.grammar import schema_grammar, tools_grammar
from r1chat.engine.local.llama_log import route_llama_log, tail
from r1chat.engine.local.native import LoadFailed, Model
from r1chat.engine.local.prompt import PromptBuilder, template_compiler
from r1chat.engine.local.vocab import Vocab

_GGML_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # ggml_type: GGML_TYPE_F16, _Q8_0, _Q4_0


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A GGUF on disk, as `r1chat.launch.local` found it (its header already read)."""

    path: Path
    name: str
    architecture: str
    chat_template: str | None
    r1_vocab: bool = False  # its vocabulary has R1's markers: the template goes unused


class LocalEngine:
    """Loads a GGUF on construction (seconds); then `stream()` replies one at a time.

    Everything about the machine is decided by the caller (`r1chat.launch.local`):
    `gpu_layers` for llama.cpp's `n_gpu_layers` (-1 all), `threads`, `backend` (where
    the layers run, for the status line: "CPU" when none is offloaded) and where
    llama.cpp's log goes.
    """

    def __init__(
        self,
        model: ModelFile,
        *,
        n_ctx: int,
        gpu_layers: int,
        threads: int,
        backend: str,
        log_path: Path,
        kv_type: str = "f16",
        flash_attn: str = "auto",
        repack: bool = True,
        sequences: int = 1,
    ) -> None:
        path = model.path
        log = route_llama_log(log_path)
        log.write(
            f"\n--- r1chat loading {path} (n_ctx={n_ctx}, gpu_layers={gpu_layers}, "
            f"kv={kv_type}, flash_attn={flash_attn}, repack={repack})\n"
        )
        # llama.cpp loads on this thread, on one core with the GIL released; a template that
        # will be used compiles meanwhile (jinja2 included: 30 ms) on another
        template = template_compiler(model.chat_template, ahead=not model.r1_vocab)
        try:
            self._llm = Model(
                path,
                n_ctx=n_ctx * sequences,
                n_batch=512,
                threads=threads,
                gpu_layers=gpu_layers,
                repack=repack,
                sequences=sequences,
                kv_type=_GGML_TYPES[kv_type],
                flash_attn=flash_attn,
            )
        except (LoadFailed, OSError) as e:
            raise R1ChatError(_load_failure(path, model.architecture, log_path, e)) from None
        self._kept: list[Any] = []
        self.vocab = Vocab(self._llm)
        self.builder = PromptBuilder(self.vocab, template)
        n_layer = self._llm.n_layer
        self.info = EngineInfo(
            model=model.name,
            backend=backend,
            n_ctx=self._llm.n_ctx // sequences,
            trained_ctx=self._llm.n_ctx_train,
            gpu_layers=min(n_layer + 1, gpu_layers if gpu_layers >= 0 else n_layer + 1),
            total_layers=n_layer + 1,
            threads=threads,
            kv_type=kv_type,
            flash_attn=flash_attn != "off",
            repack=repack,
            notes=tuple(filter(None, [llama_log.problem()])),
            caps=EngineCaps(
                in_process=True, counts=True, prefill=True, tokens=True, sequences=sequences
            ),
        )
        self._chunk = 512 if self.info.gpu_layers else 128
        self.finish_reason = "stop"

    # -- prompts ---------------------------------------------------------------

    def prompt_tokens(self, request: Request, reading: Reading | None = None) -> list[int]:
        return self.builder.for_request(request, reading=reading)

    def count_prompt(self, request: Request) -> int:
        return len(self.prompt_tokens(request))

    def render(self, request: Request) -> RenderedPrompt:
        tokens = self.prompt_tokens(request)
        return RenderedPrompt(self.vocab.render(tokens), tuple(tokens))

    def opens_thinking(self, request: Request) -> bool:
        return self.builder.opens_thinking(request.think)

    def prefill(self, request: Request, control: Control) -> int:
        """Evaluate, ahead of time, the conversation in `request` (its last message the
        model's answer) as the next prompt will start with it, so that prompt only reads
        its new message. Stops between chunks once `control` is cancelled (what was read
        stays in the cache). Returns the tokens it evaluated."""
        tokens = self.builder.for_request(request, reply=False)
        if prompt_problem(len(tokens), self.info.n_ctx):
            return 0
        start = self._rewind(tokens, len(tokens))
        for _ in self._read(tokens, start, len(tokens), control):
            pass
        return len(self._llm.cached) - start

    def warm_up(self) -> None:
        self._llm.warm_up()

    # -- generation ------------------------------------------------------------

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        reply = self.reply(self.prompt_tokens(request), request.sampling, control, request.tools)
        self.finish_reason = "cancelled"  # (until the reply says how it ended)
        self.finish_reason = yield from reply

    def complete(
        self, text: str, sampling: Sampling, control: Control
    ) -> Generator[Delta | PromptProgress, None, str]:
        """Continue raw prompt `text`, whose special tokens are read as such (the caller
        wrote the whole prompt: `/v1/completions`); BOS is added when the model wants it."""
        vocab = self.vocab
        prompt = vocab.encode_markup(text)
        if vocab.add_bos and vocab.bos >= 0 and prompt[:1] != [vocab.bos]:
            prompt.insert(0, vocab.bos)
        return (yield from self.reply(prompt, sampling, control))

    def reply(
        self, prompt: list[int], s: Sampling, control: Control, tools: Tools | None = None
    ) -> Generator[Delta | PromptProgress, None, str]:
        """`stream` for a prompt already read into tokens (`prompt_tokens`); the answer
        is held to `s.schema`, or to text or calls of `tools`. Returns the finish reason."""
        limit, grammar = self._limits(prompt, s, tools)
        yield from self._evaluate_prompt(prompt, control)
        if control.cancelled:
            return "cancelled"
        self._llm.seed = seed_of(s)
        return (yield from self._generate(_Alone(self._llm, s), prompt, limit, control, grammar))

    def _limits(self, prompt: list[int], s: Sampling, tools: Tools | None) -> tuple[int, Any]:
        """The tokens a reply to `prompt` may have, and its grammar (refusing a prompt
        that leaves no room, or a schema llama.cpp cannot use, before any work)."""
        n_ctx = self.info.n_ctx
        if problem := prompt_problem(len(prompt), n_ctx):
            trained = self.info.trained_ctx
            hint = f" (the model supports up to {trained})" if trained else ""
            raise PromptTooLong(f"{problem}; raise --ctx{hint} or shorten the input")
        limit = n_ctx - len(prompt)
        if s.max_tokens is not None:
            limit = min(limit, s.max_tokens)
        return limit, self._grammar(s, tools)

    def _evaluate_prompt(self, prompt: list[int], control: Control) -> Iterator[PromptProgress]:
        """Evaluate the prompt in cancellable chunks, reusing the cache (but for the last
        token, whose logits the reply's first token is sampled from)."""
        total = len(prompt)
        start = self._rewind(prompt, total - 1)
        for done in self._read(prompt, start, total, control):
            yield PromptProgress(done, total, start)

    def _rewind(self, tokens: list[int], most: int) -> int:
        """Keep the cache's prefix in common with `tokens` (at most `most` of them), drop
        the rest; returns where evaluation starts."""
        return self._llm.keep_prefix(tokens, most)

    def _read(self, tokens: list[int], start: int, end: int, control: Control) -> Iterator[int]:
        """Evaluate `tokens[start:end]` in chunks, stopping between them once `control` is
        cancelled; yields the tokens in the cache after each chunk."""
        for i in range(start, end, self._chunk):
            if control.cancelled:
                return
            self._llm.eval(tokens[i : min(i + self._chunk, end)])
            yield len(self._llm.cached)

    def _generate(
        self, tokens: Tokens, prompt: list[int], limit: int, control: Control, grammar: Any
    ) -> Generator[Delta, None, str]:
        """The reply's deltas from `tokens` (a sequence whose cache holds `prompt` but for
        its last token); returns how it ended."""
        vocab = self.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        context = list(prompt)
        produced = 0
        # a schema holds the answer only: the reasoning before `</think>` stays free
        free = grammar is not None and self._reasoning_open(prompt)
        seen = ""  # the reasoning's last characters, to find `</think>` in
        tokens.restart(context, None if free else grammar)
        finish = "length"
        try:
            while produced < limit:
                token = tokens.next()
                if token is None:  # (the slot's step was cancelled: the reply was stopped)
                    finish = "cancelled" if control.cancelled else "stop"
                    break
                if vocab.is_eog(token):
                    finish = "stop"
                    break
                produced += 1
                context.append(token)
                text = decoder.decode(vocab.piece(token))
                yield Delta(text)
                if control.cancelled:
                    finish = "cancelled"
                    break
                if free and r1.THINK_CLOSE in (seen := (seen + text)[-32:]):
                    free = False  # the answer begins: under the grammar from here
                    tokens.restart(context, grammar)
                if (injection := control.take_injection()) is not None:
                    ids = vocab.encode_markup(injection)
                    ids = ids[: max(0, limit - produced)]
                    produced += len(ids)
                    context += ids
                    text = decoder.decode(b"".join(vocab.piece(t) for t in ids))
                    yield Delta(text, len(ids), injected=True)
                    free = free and r1.THINK_CLOSE not in injection  # a budget ends it
                    tokens.restart(context, None if free else grammar)
        finally:
            tokens.close()
        if finish != "stop":
            decoder.reset()  # cut inside a character: its first bytes are not text (no "�")
        elif tail_text := decoder.decode(b"", final=True):
            yield Delta(tail_text, 0)
        return finish

    def _grammar(self, s: Sampling, tools: Tools | None) -> Any:
        if s.schema is not None:
            return schema_grammar(s.schema)
        if tools is not None and tools.callable:
            return tools_grammar(tools, self.builder.tool_tokens)
        return None

    def _reasoning_open(self, prompt: list[int]) -> bool:
        """Whether the prompt ends inside a `<think>` block (the reply starts reasoning)."""
        tail = self.vocab.render(prompt[-16:])
        return tail.rfind(r1.THINK_OPEN) > tail.rfind(r1.THINK_CLOSE)

    def keep(self, thing: Any) -> None:
        """Keep `thing` (a lock on the model file, say) until the engine closes, then close
        it too."""
        if thing is not None:
            self._kept.append(thing)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._llm.close()
        self.let_go()

    def let_go(self) -> None:
        """Close what the engine keeps (the model file's lock), not the model: for a
        process about to end, whose memory goes back to the system with it."""
        for thing in self._kept:
            with contextlib.suppress(Exception):
                thing.close()
        self._kept.clear()


class Tokens(Protocol):
    """Where a reply's tokens come from: one sequence of a llama.cpp context."""

    def restart(self, context: list[int], grammar: Any) -> None:
        """Go on from `context` (what the cache lacks of it is read first), sampling
        under `grammar` (None: freely)."""

    def next(self) -> int | None:
        """The next token (None: there is none)."""

    def close(self) -> None: ...


class _Alone:
    """The context's one sequence, sampled as the batched engine samples its sequences
    (`constrained.Sampler`: the same chain, the same seed, the same tokens)."""

    def __init__(self, llm: Model, s: Sampling) -> None:
        self._llm, self._s = llm, s
        self._tokens: Generator[int, None, None] | None = None

    def restart(self, context: list[int], grammar: Any) -> None:
        self.close()
        self._tokens = constrained(self._llm, context, grammar, self._s)

    def next(self) -> int | None:
        return next(self._tokens, None) if self._tokens is not None else None

    def close(self) -> None:
        if self._tokens is not None:
            self._tokens.close()
            self._tokens = None


def seed_of(s: Sampling) -> int:
    """The request's seed, else a random one."""
    return s.seed if s.seed is not None else random.randrange(2**31)


def _load_failure(path: Path, arch: str, log_path: Path, error: Exception) -> str:
    """One line saying why llama.cpp refused the file, from its log."""
    lines = tail(log_path)
    for line in reversed(lines):
        if "unknown model architecture" in line:
            return f"{path.name}: unsupported model architecture '{arch}' for this llama.cpp"
    for line in reversed(lines):
        low = line.lower()
        if "error" in low or "failed" in low:
            detail = line.split(":", 1)[-1].strip() if ":" in line else line.strip()
            return f"cannot load {path.name}: {detail} (see {log_path})"
    return f"cannot load {path.name}: {error} (see {log_path})"
