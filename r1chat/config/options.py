"""The command-line options shared by `ask` and `chat` (`config.settings.resolve` turns
them into `Settings`)."""

from __future__ import annotations

import argparse

from r1chat.config.schema import FLASH_ATTN, KV_TYPES, REPACK
from r1chat.core.overflow import POLICIES
from r1chat.core.request import DEFAULT_CTX


def add_model_options(p: argparse.ArgumentParser, *, remote: bool = True) -> None:
    """-m, --ctx, --gpu-layers, --threads; with `remote`, --endpoint and --api-key-env."""
    g = p.add_argument_group("model")
    remotes = ", or a remote named in the config ([remotes.NAME])" if remote else ""
    g.add_argument("-m", "--model", help=f"GGUF path, catalog name (r1:7b), imported name{remotes}")
    g.add_argument(
        "--ctx", dest="n_ctx", type=int, metavar="N", help=f"context size ({DEFAULT_CTX})"
    )
    g.add_argument(
        "--gpu-layers",
        type=int,
        metavar="N",
        help="layers to offload to the GPU (-1 all; default: all that fit, 0 without a GPU)",
    )
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads (physical cores)")
    g.add_argument(
        "--kv-type",
        choices=KV_TYPES,
        help="KV cache type: f16 (default), q8_0 (about half the memory) or q4_0 (a quarter)",
    )
    g.add_argument(
        "--flash-attn",
        choices=FLASH_ATTN,
        help="flash attention (auto: llama.cpp's choice, on wherever it has the kernel)",
    )
    repack = g.add_mutually_exclusive_group()
    repack.add_argument(
        "--repack",
        choices=REPACK,
        help="let llama.cpp repack weights for faster CPU kernels (auto: where a one-time "
        "probe shows they run on this CPU)",
    )
    repack.add_argument(
        "--no-repack", dest="repack", action="store_const", const="off", help="--repack off"
    )
    if not remote:
        return
    g.add_argument(
        "--endpoint",
        metavar="URL",
        help="use an OpenAI-compatible server (vLLM, SGLang, llama-server, DeepSeek's API) "
        "instead of a local model; -m then names the served model",
    )
    g.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="environment variable holding the server's API key (default: R1CHAT_API_KEY)",
    )


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument(
        "--preset",
        help="named sampling preset (deepseek, precise, creative, "
        "greedy, or your own from the config)",
    )
    g.add_argument("--temperature", type=float, metavar="T", help="temperature (0.6)")
    g.add_argument("--top-p", type=float, metavar="P", help="top-p (0.95)")
    g.add_argument("--top-k", type=int, metavar="K", help="top-k (40)")
    g.add_argument("--min-p", type=float, metavar="P", help="min-p (0)")
    g.add_argument("--seed", type=int, metavar="N", help="random seed (random)")
    g.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="stop after N generated tokens (default: until the context is full)",
    )
    g.add_argument(
        "--system",
        metavar="TEXT",
        help="instructions (folded into the first user turn, as DeepSeek advises)",
    )


def add_reasoning_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reasoning")
    g.add_argument(
        "--think-budget", type=int, metavar="N", help="end the reasoning after N tokens and answer"
    )
    g.add_argument(
        "--no-loop-guard",
        dest="loop_guard",
        action="store_false",
        default=None,
        help="do not cut reasoning or answers that repeat themselves",
    )
    g.add_argument(
        "--no-think", action="store_true", help="skip the reasoning: the model answers directly"
    )
    g.add_argument(
        "--math",
        action="store_true",
        help="ask for step-by-step reasoning and a \\boxed{} final answer",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    add_sampling_options(p)
    add_reasoning_options(p)


def add_tool_options(p: argparse.ArgumentParser, *, ask: bool) -> None:
    """MCP tools: the chat uses `mcp.json` in the config folder when there is one; `ask`
    only with `--mcp`, and runs only the tools `--allow-tool` names."""
    g = p.add_argument_group("tools (MCP)")
    if ask:
        g.add_argument(
            "--mcp",
            nargs="?",
            const="",
            metavar="FILE",
            help="offer the tools of the MCP servers in FILE (Claude Desktop's mcpServers "
            "JSON; default: mcp.json in the config folder)",
        )
        g.add_argument(
            "--allow-tool",
            action="append",
            default=[],
            metavar="NAME",
            help="let the model run tool NAME (repeat for more); other calls are refused",
        )
    else:
        x = g.add_mutually_exclusive_group()
        x.add_argument(
            "--mcp",
            metavar="FILE",
            help="MCP servers from FILE (Claude Desktop's mcpServers JSON) instead of "
            "mcp.json in the config folder",
        )
        x.add_argument("--no-mcp", action="store_true", help="no MCP tools in this chat")


def add_conversation_options(p: argparse.ArgumentParser, verb: str) -> None:
    """`-c` (the most recent conversation) and `--conversation ID`; `verb` is what the
    command does with it (`reopen`, `continue`)."""
    g = p.add_argument_group("conversation")
    x = g.add_mutually_exclusive_group()
    x.add_argument(
        "-c",
        "--continue",
        dest="resume",
        action="store_true",
        help=f"{verb} the most recent conversation (chat or ask)",
    )
    x.add_argument(
        "--conversation",
        type=int,
        metavar="ID",
        help=f"{verb} conversation ID (see `r1chat history`)",
    )
    g.add_argument(
        "--overflow",
        choices=POLICIES,
        help="when the conversation leaves the reply too little room: leave out the oldest "
        "turns (drop-oldest, the default) or refuse (stop)",
    )
