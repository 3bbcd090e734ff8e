"""The local engines' sampling: one chain (`constrained.Sampler`) for a sequence alone and
for a batched slot, the temperature applied first (the R1 card's protocol as vLLM and
transformers run it: top-k, top-p and min-p cut the tempered distribution)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import SimpleNamespace

import llama_cpp

from r1chat.core.events import Delta
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.engine.local.constrained import Sampler
from r1chat.launch.local import open_local


def test_top_p_cuts_the_tempered_distribution() -> None:
    """Logits 1, 0, 0: untempered, top-p 0.7 keeps two tokens (58% + 21%); at temperature
    0.25 the first holds 96% and is kept alone."""
    model = SimpleNamespace(vocab=None, n_vocab=3)  # (the chain needs no model)
    s = Sampling(temperature=0.25, top_p=0.7, top_k=0, min_p=0.0)
    sampler = Sampler(model, s, seed=1)
    try:
        data = (llama_cpp.llama_token_data * 3)(
            *(llama_cpp.llama_token_data(i, logit, 0.0) for i, logit in enumerate((1, 0, 0)))
        )
        candidates = llama_cpp.llama_token_data_array(data, 3, -1, False)
        llama_cpp.llama_sampler_apply(sampler.chain, ctypes.byref(candidates))
        assert candidates.size == 1
        assert data[candidates.selected].id == 0
    finally:
        sampler.close()


def test_a_seeded_reply_is_the_same_alone_and_in_a_batched_slot(smollm2_path: Path) -> None:
    sampling = Sampling(temperature=0.7, top_p=0.9, top_k=0, max_tokens=32, seed=11)
    request = Request((Message("user", "Tell me a story about a cat."),), sampling)
    texts = []
    for sequences in (1, 2):
        engine = open_local(smollm2_path, n_ctx=1024, threads=1, sequences=sequences)
        try:
            texts.append(
                "".join(d.text for d in engine.stream(request, Control()) if isinstance(d, Delta))
            )
        finally:
            engine.close()
    assert texts[0] and texts[0] == texts[1]
