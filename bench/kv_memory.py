"""Memory of the KV cache types: RSS of a process that loaded SmolLM2-135M with
`--ctx 32768` at f16, q8_0 and q4_0 (each in its own process, the same run), against what
the fit computation predicts for the cache.

Usage: python bench/kv_memory.py --smollm2 PATH [--ctx 32768]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import ROOT, table

PROBE = """
import json, sys
from r1chat.launch.local import open_local
from r1chat.models.fit import Shape
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
path, ctx, kv = sys.argv[1], int(sys.argv[2]), sys.argv[3]
before = rss()
engine = open_local(path, n_ctx=ctx, threads=1, kv_type=kv)
loaded = rss()
shape = Shape.from_gguf(path).with_kv(kv)
print(json.dumps({"before": before, "loaded": loaded, "predicted": shape.kv_bytes(ctx)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", type=Path, required=True)
    ap.add_argument("--ctx", type=int, default=32768)
    opts = ap.parse_args()
    rows = []
    base = None
    for kv in ("f16", "q8_0", "q4_0"):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(opts.smollm2), str(opts.ctx), kv],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        grown = r["loaded"] - r["before"]
        base = base or grown
        rows.append(
            [
                kv,
                f"{r['loaded'] / 2**20:,.0f}",
                f"{grown / 2**20:,.0f}",
                f"{r['predicted'] / 2**20:,.0f}",
                f"{grown / base:.2f}×",
            ]
        )
    print(f"## SmolLM2-135M Q4_1, --ctx {opts.ctx:,}, CPU\n")
    print(
        table(
            [
                "KV type",
                "RSS after load (MiB)",
                "grown by load (MiB)",
                "KV cache predicted (MiB)",
                "vs f16",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
