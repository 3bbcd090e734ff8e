"""A huge prompt must not freeze `r1chat serve` for everyone: a normal chat's latency alone
and beside one, in one run.

Cases, each beside the same short chat (the answer fixture, non-streaming):
- a 20 MB prompt (over the body bound: refused before it is read);
- a 0.9 MB prompt (inside the 1 MiB bound, 25× the context: read until it passes the
  context);
- the 0.9 MB prompt from a client that leaves after 0.2 s.
For each: the short chat's seconds (median), the big request's status and seconds.

Usage: python bench/serve_bigprompt.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx2
from _common import median, table

from tests.fixtures.scripted import write_answer_model
from tests.fixtures.serve import serving

CASES = (
    ("beside a 20 MB prompt", 20 << 20, None),
    ("beside a 0.9 MB prompt", 900 << 10, None),
    ("beside a 0.9 MB prompt whose client leaves", 900 << 10, 0.2),
)
HI = {"messages": [{"role": "user", "content": "What is 2+2?"}]}
JSON = {"Content-Type": "application/json"}


def short(url: str) -> float:
    start = time.perf_counter()
    r = httpx2.post(f"{url}/chat/completions", json=HI, timeout=120)
    r.raise_for_status()
    return time.perf_counter() - start


def big(url: str, size: int, leave_after: float | None, out: dict[str, object]) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "word " * (size // 5)}]})
    start = time.perf_counter()
    try:
        r = httpx2.post(
            f"{url}/chat/completions",
            content=body.encode(),
            headers=JSON,
            timeout=leave_after or 120,
        )
        out["status"] = r.status_code
    except httpx2.TimeoutException:
        out["status"] = "left"
    out["seconds"] = time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = write_answer_model(Path(tmp))
        env = {"R1CHAT_HOME": str(Path(tmp) / "home")}
        with serving(model.path, "--ctx", "8192", "--quiet", env=env) as s:
            short(s.url)  # warm
            alone = median([short(s.url) for _ in range(opts.runs)])
            rows = [["short chat alone", f"{alone:.3f}", "-", "-"]]
            for name, size, leave in CASES:
                times, statuses, bigs = [], [], []
                for _ in range(opts.runs):
                    out: dict[str, object] = {}
                    t = threading.Thread(target=big, args=(s.url, size, leave, out))
                    t.start()
                    time.sleep(0.05)  # the big one is on its way first
                    times.append(short(s.url))
                    t.join()
                    statuses.append(str(out["status"]))
                    bigs.append(float(out["seconds"]))  # type: ignore[arg-type]
                status = "/".join(sorted(set(statuses)))
                rows.append([name, f"{median(times):.3f}", status, f"{median(bigs):.3f}"])
            after = median([short(s.url) for _ in range(opts.runs)])
            rows.append(["short chat alone, after", f"{after:.3f}", "-", "-"])
    print(
        f"## A short chat beside a huge prompt (r1chat serve, --ctx 8192, median of {opts.runs})\n"
    )
    print(table(["case", "short chat s", "big request", "big request s"], rows))


if __name__ == "__main__":
    main()
