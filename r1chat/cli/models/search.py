"""`r1chat models search [QUERY]`: GGUF repos on the Hub, each quantization sized for
this machine (the same verdicts as `r1chat models`; the KV cache estimated)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from r1chat.cli.models.common import catalog_of, ctx_of


def run_search(args: argparse.Namespace) -> int:
    from r1chat.core.errors import UsageError
    from r1chat.core.units import human
    from r1chat.models import hardware, hub_repos
    from r1chat.models.listing import fit_record

    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    query = " ".join(args.query) or hub_repos.DEFAULT_QUERY
    catalog, ctx, hw = catalog_of(args), ctx_of(args), hardware.current()
    found = hub_repos.search(query, args.limit)
    rows: list[dict[str, Any]] = []
    for repo in found:
        quants = []
        for q in repo.quants.values():
            fit = hub_repos.quant_fit(repo, q, catalog, hw, ctx)
            name = f"{repo.repo}:{q.quant}"
            quants.append(
                {
                    "name": name,
                    "quant": q.quant,
                    "size": q.size,
                    "files": list(q.paths),
                    "fit": fit_record(fit),
                }
            )
        rows.append(
            {
                "repo": repo.repo,
                "downloads": repo.downloads,
                "arch": repo.arch,
                "params": repo.params,
                "gated": repo.gated,
                "quants": quants,
            }
        )
    if getattr(args, "json", False):
        print(json.dumps({"query": query, "context": ctx, "repos": rows}, indent=2))
        return 0
    if not rows:
        print(f"no GGUF repositories on the Hub match {query!r}")
        return 0
    from r1chat.models.catalog import params_label

    print(
        f"GGUF repositories for {query!r}, most downloaded first; fit at {ctx:,} tokens "
        "(KV cache estimated until a file is pulled)\n"
    )
    for r in rows:
        shape = " ".join(
            x for x in (r["arch"], params_label(r["params"]) if r["params"] else "") if x
        )
        head = [
            r["repo"],
            shape,
            f"↓{r['downloads']:,}",
            "gated (needs HF_TOKEN)" if r["gated"] else "",
        ]
        print("  ".join(x for x in head if x))
        pieces = [f"{q['quant']} {human(q['size'])} {q['fit']['short']}" for q in r["quants"]]
        line = "   "
        for piece in pieces:
            if len(line) + len(piece) + 3 > 96:
                print(line.rstrip(" ·"))
                line = "   "
            line += f" {piece} ·"
        print(line.rstrip(" ·"))
    print(
        f"\npull one with: r1chat models pull {rows[0]['repo']}:QUANT "
        "(or without :QUANT, for the one that fits best)"
    )
    return 0
