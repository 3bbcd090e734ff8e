"""What a JSON schema costs: decode tokens/s of an answer held to a schema against a free
one on SmolLM2-135M (the same prompt, greedy, alternating runs; medians), and the time
to build the grammar of a 20-property schema (first build, and from the cache).

Usage: python bench/schema_cost.py [--runs 5] [--threads 1] [--smollm2 PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import median, table

from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.local import grammar
from r1chat.launch.local import open_local

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"
ITEM = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["name", "year"],
}
LIST = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": ITEM}},
    "required": ["items"],
}
TWENTY = {
    "type": "object",
    "properties": {
        f"field_{i}": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}, ITEM][i % 4]
        for i in range(20)
    },
    "required": [f"field_{i}" for i in range(20)],
}
PROMPT = "List ten famous books with the year each was published."


def rate(engine: object, schema: str | None, tokens: int) -> float:
    sampling = Sampling(temperature=0.0, max_tokens=tokens, schema=schema)
    request = Request((Message("user", PROMPT),), sampling)
    events = list(run_turn(engine, request, Control(), Guards(loop_guard=False)))  # type: ignore[arg-type]
    stats = events[-1].stats  # type: ignore[union-attr]
    decode_s = stats.total_s - stats.time_to_first_token_s
    return (stats.answer_tokens + stats.thinking_tokens - 1) / max(1e-9, decode_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--smollm2", type=Path, default=SMOLLM2)
    args = parser.parse_args()
    engine = open_local(args.smollm2, n_ctx=2048, gpu_layers=0, threads=args.threads)
    schema = json.dumps(LIST)
    rate(engine, None, 8)  # warm
    free, held = [], []
    for _ in range(args.runs):
        free.append(rate(engine, None, args.tokens))
        held.append(rate(engine, schema, args.tokens))
    text = json.dumps(TWENTY)
    start = time.perf_counter()
    grammar.schema_grammar(text)
    first = time.perf_counter() - start
    start = time.perf_counter()
    grammar.schema_grammar(text)
    cached = time.perf_counter() - start
    engine.close()
    print(
        table(
            ["measure", "value"],
            [
                [
                    f"free answer, decode tok/s (SmolLM2, {args.threads} thread)",
                    f"{median(free):,.0f}",
                ],
                ["answer under a schema, decode tok/s", f"{median(held):,.0f}"],
                ["slowdown free / schema (target ≤ 1.3)", f"{median(free) / median(held):.2f}×"],
                ["grammar of a 20-property schema: first build (ms)", f"{first * 1000:.1f}"],
                ["the same from the cache (ms)", f"{cached * 1000:.3f}"],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
