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

from r1chat.core.request import Sampling
from r1chat.engine.local.native import Model, lib


class Sampler:
    """One reply's sampling (`s`'s chain, `seed`), under `grammar` (a `LlamaGrammar`)
    from `hold()` on: the tokens sampled at a position of a context's last batch."""

    def __init__(self, llm: Model, s: Sampling, seed: int) -> None:
        c = self._lib = lib()
        self._vocab = llm.vocab
        self.chain = c.llama_sampler_chain_init(c.llama_sampler_chain_default_params())
        if s.temperature == 0:
            links = [c.llama_sampler_init_greedy()]
        else:  # the temperature first, as the R1 card's protocol (vLLM, transformers) and
            # OpenAI's API mean it: top-k, top-p and min-p cut the tempered distribution
            links = [
                c.llama_sampler_init_temp(s.temperature),
                c.llama_sampler_init_top_k(s.top_k),
                c.llama_sampler_init_top_p(s.top_p, 1),
                c.llama_sampler_init_min_p(s.min_p, 1),
                c.llama_sampler_init_dist(seed),
            ]
        for link in links:
            c.llama_sampler_chain_add(self.chain, link)  # (the chain owns it)
        self._rules: Any = None
        self._n_vocab = llm.n_vocab
        self._every: Any = None

    def hold(self, grammar: Any) -> None:
        """Sample under `grammar` from its start (None: freely) from the next token on."""
        self._free_rules()
        if grammar is not None:
            self._rules = self._lib.llama_sampler_init_grammar(
                self._vocab, grammar._grammar.encode(), grammar._root.encode()
            )

    def sample(self, ctx: Any, idx: int) -> int:
        """The token for the logits at `idx` of `ctx`'s last decode."""
        c = self._lib
        token = int(c.llama_sampler_sample(self.chain, ctx, idx))
        if self._rules is None:
            return token
        one = c.llama_token_data(token, 0.0, 0.0)
        single = c.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
        c.llama_sampler_apply(self._rules, ctypes.byref(single))
        if math.isinf(one.logit):  # refused: the grammar over every candidate
            import numpy as np  # (only here: a refusal)

            n = self._n_vocab
            if self._every is None:
                self._every = (c.llama_token_data * n)()
            table = np.ctypeslib.as_array(self._every)
            table["id"] = np.arange(n, dtype=np.intc)
            logits = c.llama_get_logits_ith(ctx, idx)
            table["logit"] = np.ctypeslib.as_array(logits, shape=(n,))
            table["p"] = 0.0
            data = ctypes.cast(self._every, ctypes.POINTER(c.llama_token_data))
            candidates = c.llama_token_data_array(data, n, -1, False)
            c.llama_sampler_apply(self._rules, ctypes.byref(candidates))
            c.llama_sampler_apply(self.chain, ctypes.byref(candidates))
            token = int(self._every[candidates.selected].id)
        c.llama_sampler_accept(self._rules, token)
        return token

    def close(self) -> None:
        self._free_rules()
        if self.chain is not None:
            self._lib.llama_sampler_free(self.chain)
            self.chain = None

    def _free_rules(self) -> None:
        if self._rules is not None:
            self._lib.llama_sampler_free(self._rules)
            self._rules = None


def constrained(
    llm: Model, context: list[int], grammar: Any, s: Sampling
) -> Generator[int, None, None]:
    """The tokens `llm` generates after `context` (its cache reused), under `grammar` (a
    `LlamaGrammar`; None: freely), with `s`'s sampling and `llm.seed`."""
    sampler = Sampler(llm, s, llm.seed)
    sampler.hold(grammar)
    try:
        _read(llm, context)
        while True:
            token = sampler.sample(llm.ctx, -1)
            yield token
            llm.eval([token])
    finally:
        sampler.close()


def _read(llm: Model, context: list[int]) -> None:
    """Evaluate what the cache lacks of `context`, its last token at least, unless the
    last decode ended with it (its logits are at hand)."""
    if llm.keep_prefix(context, len(context)) == len(context) and llm.logits_fresh:
        return
    llm.eval(context[llm.keep_prefix(context, len(context) - 1) :])
