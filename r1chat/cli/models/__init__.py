"""`r1chat models`: list, pull, remove, inspect and import GGUF models.

Every module here keeps its top-level imports stdlib-only (`r1chat --help` imports every
command); listing and `info` never import llama_cpp, textual or huggingface_hub.
"""

from __future__ import annotations

import argparse

from r1chat.cli.models import info, listing, manage, pull, search
from r1chat.config.schema import KV_TYPES
from r1chat.core.request import DEFAULT_CTX

_EXAMPLES = f"""examples:
  r1chat models                          the list, sized for this machine at {DEFAULT_CTX} tokens
  r1chat models --ctx 32768              ... at 32k tokens of context
  r1chat models pull r1:14b              download (resumable, sha256-verified)
  r1chat models search deepseek r1 qwen  GGUF repos on the Hub, sized for this machine
  r1chat models pull unsloth/DeepSeek-R1-Distill-Qwen-7B-GGUF:Q5_K_M   any Hub GGUF
  r1chat models info r1:7b-q8_0          every field, local path, fit at several contexts
  r1chat models import ./x.gguf --name x register a file you have; then: r1chat -m x
  r1chat models path r1:7b               the file, for scripts
  r1chat models default r1:14b           what r1chat uses without -m
  r1chat models rm r1:7b --yes           delete it
"""


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--catalog",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="user catalog to merge over the built-in one "
        "(default: $R1CHAT_CATALOG or models.toml in the config folder)",
    )
    sizing = argparse.ArgumentParser(add_help=False)
    sizing.add_argument(
        "--ctx",
        type=int,
        metavar="N",
        default=argparse.SUPPRESS,
        help=f"context size to size models for (default: config or {DEFAULT_CTX})",
    )
    sizing.add_argument(
        "--kv-type",
        choices=KV_TYPES,
        default=argparse.SUPPRESS,
        help="KV cache type to size models for (default: config or f16)",
    )
    sizing.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )

    p = sub.add_parser(
        "models",
        parents=[common, sizing],
        help="list, download and manage models",
        description="The model catalog and the models on this machine. Without a "
        "subcommand: the list, with sizes and whether each fits this machine.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=listing.run_list)
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND", title="subcommands")

    q = msub.add_parser("list", parents=[common, sizing], help="catalog and installed models")
    q.set_defaults(func=listing.run_list)

    q = msub.add_parser("pull", parents=[common], help="download a model (resumable, verified)")
    q.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="catalog name (r1:7b) or Hub repo: OWNER/REPO:QUANT, hf.co/OWNER/REPO:QUANT, "
        "or OWNER/REPO (the quantization that fits best)",
    )
    q.add_argument(
        "--ctx",
        type=int,
        metavar="N",
        default=argparse.SUPPRESS,
        help=f"context to size OWNER/REPO for (default: config or {DEFAULT_CTX})",
    )
    q.set_defaults(func=pull.run_pull)

    q = msub.add_parser("search", parents=[common, sizing], help="find GGUF models on the Hub")
    q.add_argument("query", nargs="*", help="what to look for (default: DeepSeek-R1)")
    q.add_argument("--limit", type=int, default=20, metavar="N", help="at most N repos (20)")
    q.set_defaults(func=search.run_search)

    q = msub.add_parser("rm", parents=[common], help="delete a downloaded model")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("-y", "--yes", action="store_true", help="do not ask")
    q.add_argument(
        "--force",
        action="store_true",
        help="remove it even while a running r1chat (serve, chat, ask) has it loaded",
    )
    q.set_defaults(func=manage.run_rm)

    q = msub.add_parser("info", parents=[common, sizing], help="everything about one model")
    q.add_argument("name", metavar="NAME", help="catalog name, imported name or GGUF path")
    q.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="fit N replies at once, each with its own KV cache of the context (serve)",
    )
    q.set_defaults(func=info.run_info)

    q = msub.add_parser("import", parents=[common], help="register a GGUF already on disk")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--name", help="name to use with -m (default: from the file name)")
    q.add_argument("--copy", action="store_true", help="copy it into the models folder")
    q.set_defaults(func=manage.run_import)

    q = msub.add_parser("path", parents=[common], help="print a model's file path")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=manage.run_path)

    q = msub.add_parser("default", parents=[common], help="show or set the default model")
    q.add_argument("name", metavar="NAME", nargs="?")
    q.set_defaults(func=manage.run_default)
