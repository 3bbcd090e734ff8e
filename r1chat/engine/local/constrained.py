"""Tokens under a grammar, sampled as llama.cpp's own common sampler does it.

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


def constrained(
    llm: Any, context: list[int], grammar: Any, s: Sampling
) -> Generator[int, None, None]:
    """The tokens `llm` generates after `context` (its cache reused), under `grammar` (a
    `LlamaGrammar`), with `s`'s sampling."""
    chain = llm._init_sampler(top_k=s.top_k, top_p=s.top_p, min_p=s.min_p, temp=s.temperature)
    rules = llama_cpp.llama_sampler_init_grammar(
        llm._model.vocab, grammar._grammar.encode(), grammar._root.encode()
    )
    n_vocab = llm.n_vocab()
    every = (llama_cpp.llama_token_data * n_vocab)()
    table = np.ctypeslib.as_array(every)
    one = llama_cpp.llama_token_data()
    try:
        _read(llm, context)
        while True:
            token = chain.sample(llm._ctx, -1)
            one.id, one.logit, one.p = token, 0.0, 0.0
            single = llama_cpp.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
            llama_cpp.llama_sampler_apply(rules, ctypes.byref(single))
            if math.isinf(one.logit):  # refused: the grammar over every candidate
                logits = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
                table["id"] = np.arange(n_vocab, dtype=np.intc)
                table["logit"] = np.ctypeslib.as_array(logits, shape=(n_vocab,))
                table["p"] = 0.0
                data = ctypes.cast(every, ctypes.POINTER(llama_cpp.llama_token_data))
                candidates = llama_cpp.llama_token_data_array(data, n_vocab, -1, False)
                llama_cpp.llama_sampler_apply(rules, ctypes.byref(candidates))
                llama_cpp.llama_sampler_apply(chain.sampler, ctypes.byref(candidates))
                token = int(every[candidates.selected].id)
            llama_cpp.llama_sampler_accept(rules, token)
            yield token
            llm.eval([token])
    finally:
        llama_cpp.llama_sampler_free(rules)
        chain.close()


def _read(llm: Any, context: list[int]) -> None:
    """Evaluate what the cache lacks of `context` (at least its last token, for logits)."""
    cached = llm.input_ids[: llm.n_tokens].tolist()
    n = 0
    while n < min(len(cached), len(context)) and cached[n] == context[n]:
        n += 1
    llm.n_tokens = min(n, len(context) - 1)
    llm.eval(context[llm.n_tokens :])
