"""A reply's sampling (the local engines' one chain), and its tokens under a grammar,
sampled as llama.cpp's own common sampler does it.

`Llama.generate(grammar=...)` runs the grammar over the whole vocabulary before every
token (on SmolLM2's 49k tokens that costs more than the model). llama.cpp's common
sampler instead samples as if there were no grammar, asks the grammar about that one
token, and only when it is refused applies the grammar to every candidate and samples
again: the same distribution, at a fraction of the cost.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Generator
from typing import Any

import llama_cpp
import numpy as np

from r1chat.core.request import Sampling


class Sampler:
    """One reply's sampling (`s`'s chain, `seed`), under `grammar` (a `LlamaGrammar`)
    from `hold()` on: the tokens sampled at a position of a context's last batch."""

    def __init__(self, llm: Any, s: Sampling, seed: int) -> None:
        from llama_cpp._internals import LlamaSampler

        self._model = llm._model
        self.chain = LlamaSampler()
        if s.temperature == 0:
            self.chain.add_greedy()
        else:  # the temperature first, as the R1 card's protocol (vLLM, transformers) and
            # OpenAI's API mean it: top-k, top-p and min-p cut the tempered distribution
            self.chain.add_temp(s.temperature)
            self.chain.add_top_k(s.top_k)
            self.chain.add_top_p(s.top_p, 1)
            self.chain.add_min_p(s.min_p, 1)
            self.chain.add_dist(seed)
        self._rules: Any = None
        self._n_vocab = llm.n_vocab()
        self._every: Any = None

    def hold(self, grammar: Any) -> None:
        """Sample under `grammar` from its start (None: freely) from the next token on."""
        self._free_rules()
        if grammar is not None:
            self._rules = llama_cpp.llama_sampler_init_grammar(
                self._model.vocab, grammar._grammar.encode(), grammar._root.encode()
            )

    def sample(self, ctx: Any, idx: int) -> int:
        """The token for the logits at `idx` of `ctx`'s last decode."""
        token = int(llama_cpp.llama_sampler_sample(self.chain.sampler, ctx, idx))
        if self._rules is None:
            return token
        one = llama_cpp.llama_token_data(token, 0.0, 0.0)
        single = llama_cpp.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
        llama_cpp.llama_sampler_apply(self._rules, ctypes.byref(single))
        if math.isinf(one.logit):  # refused: the grammar over every candidate
            n = self._n_vocab
            if self._every is None:
                self._every = (llama_cpp.llama_token_data * n)()
            table = np.ctypeslib.as_array(self._every)
            table["id"] = np.arange(n, dtype=np.intc)
            logits = llama_cpp.llama_get_logits_ith(ctx, idx)
            table["logit"] = np.ctypeslib.as_array(logits, shape=(n,))
            table["p"] = 0.0
            data = ctypes.cast(self._every, ctypes.POINTER(llama_cpp.llama_token_data))
            candidates = llama_cpp.llama_token_data_array(data, n, -1, False)
            llama_cpp.llama_sampler_apply(self._rules, ctypes.byref(candidates))
            llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(candidates))
            token = int(self._every[candidates.selected].id)
        llama_cpp.llama_sampler_accept(self._rules, token)
        return token

    def close(self) -> None:
        self._free_rules()
        self.chain.close()

    def _free_rules(self) -> None:
        if self._rules is not None:
            llama_cpp.llama_sampler_free(self._rules)
            self._rules = None


def constrained(
    llm: Any, context: list[int], grammar: Any, s: Sampling
) -> Generator[int, None, None]:
    """The tokens `llm` generates after `context` (its cache reused), under `grammar` (a
    `LlamaGrammar`; None: freely), with `s`'s sampling."""
    sampler = Sampler(llm, s, llm._seed)
    sampler.hold(grammar)
    try:
        _read(llm, context)
        while True:
            token = sampler.sample(llm._ctx.ctx, -1)
            yield token
            llm.eval([token])
    finally:
        sampler.close()


def _read(llm: Any, context: list[int]) -> None:
    """Evaluate what the cache lacks of `context` (at least its last token, for logits)."""
    cached = llm.input_ids[: llm.n_tokens].tolist()
    n = 0
    while n < min(len(cached), len(context)) and cached[n] == context[n]:
        n += 1
    llm.n_tokens = min(n, len(context) - 1)
    llm.eval(context[llm.n_tokens :])
