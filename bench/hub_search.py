"""`r1chat models search` on the loopback Hub: 50 GGUF repos of 24 files each.

Figures: the command's wall time (a fresh process, as a user runs it), the search itself
in-process, and a bare baseline in the same run (huggingface_hub's `list_models` then
`model_info(files_metadata=True)` one repo after another, nothing else); and the requests
each made, by kind, from the server's log.

Usage: python bench/hub_search.py [--repos 50] [--files 24] [--runs 5]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, median, table

from tests.fixtures.hub_server import FakeHub

QUANTS = [
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "IQ4_XS",
    "Q4_0",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "Q8_0",
]


def fill(hub: FakeHub, repos: int, files: int) -> None:
    for i in range(repos):
        repo = f"quanter{i % 7}/DeepSeek-R1-Distill-Qwen-{i}B-GGUF"
        for j in range(files):
            quant = QUANTS[j % len(QUANTS)]
            shard = j // len(QUANTS)
            name = (
                f"{quant}/model-{quant}-0000{shard + 1}-of-00002.gguf"
                if files > 12
                else f"model-{quant}.gguf"
            )
            hub.add(repo, name, b"GGUF" + bytes(60))
        hub.describe(repo, downloads=1000 * (repos - i), params=7_615_616_512)


def kinds(hub: FakeHub, since: int) -> dict[str, int]:
    out: collections.Counter[str] = collections.Counter()
    for r in hub.requests[since:]:
        if r.path == "/api/models":
            out["list"] += 1
        elif r.path.startswith("/api/models/"):
            out["repo metadata"] += 1
        else:
            out["other"] += 1
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=50)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    with FakeHub() as hub:
        fill(hub, opts.repos, opts.files)
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "R1CHAT_HOME": tempfile.mkdtemp(),
            "HF_HOME": tempfile.mkdtemp(),
            "PYTHONPATH": str(ROOT),
        }
        os.environ.update(HF_ENDPOINT=hub.endpoint, HF_HOME=env["HF_HOME"])
        from huggingface_hub import HfApi

        from r1chat.models import hub_repos

        cmd = [sys.executable, "-m", "r1chat", "models", "search", "--limit", str(opts.repos)]
        walls, ours, bare = [], [], []
        for _ in range(opts.runs):  # alternated
            start = time.perf_counter()
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - start)
            mark = len(hub.requests)
            start = time.perf_counter()
            found = hub_repos.search("DeepSeek-R1", opts.repos)
            ours.append(time.perf_counter() - start)
            ours_kinds = kinds(hub, mark)
            mark = len(hub.requests)
            start = time.perf_counter()
            api = HfApi()
            ids = [
                m.id
                for m in api.list_models(
                    search="DeepSeek-R1", filter="gguf", sort="downloads", limit=opts.repos
                )
            ]
            for repo in ids:
                api.model_info(repo, files_metadata=True)
            bare.append(time.perf_counter() - start)
            bare_kinds = kinds(hub, mark)
        assert len(found) == opts.repos and out.stdout.count("GGUF  ") >= opts.repos
    print(f"## models search: {opts.repos} repos x {opts.files} GGUF files, loopback Hub\n")
    print(
        table(
            ["what", "seconds (median)", "requests"],
            [
                ["r1chat models search (whole command)", f"{median(walls):.2f}", "as below"],
                [
                    "search in-process (list + metadata, 8 at a time)",
                    f"{median(ours):.3f}",
                    str(ours_kinds),
                ],
                [
                    "bare huggingface_hub, one repo after another",
                    f"{median(bare):.3f}",
                    str(bare_kinds),
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
