"""`r1chat completion bash|zsh|fish`: a shell completion script, made from the parser.

Commands, subcommands, options and their choices come from the argparse parser, so the
script never falls behind the command line; model names (`-m`, `models pull NAME`, …)
are asked of `r1chat completion --models` when completing, so newly pulled or imported
models complete at once.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

SHELLS = ("bash", "zsh", "fish")
MODEL_OPTIONS = ("-m", "--model")
FILE_OPTIONS = ("-f", "--file", "--thinking-file", "--catalog", "-o", "--output")
MODEL_POSITIONAL = {"pull", "rm", "info", "path", "default"}  # of `models`


def register(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description='Print a completion script. bash: add `eval "$(r1chat completion '
        'bash)"` to ~/.bashrc; zsh: `eval "$(r1chat completion zsh)"` in ~/.zshrc; fish: '
        "`r1chat completion fish > ~/.config/fish/completions/r1chat.fish`.",
    )
    p.add_argument("shell", nargs="?", choices=SHELLS)
    p.add_argument("--models", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from r1chat.core.errors import UsageError

    if args.models:
        print("\n".join(model_names()))
        return 0
    if args.shell is None:
        raise UsageError("name a shell: r1chat completion bash|zsh|fish")
    tree = command_tree(args.root_parser)
    script = {"bash": bash, "zsh": zsh, "fish": fish}[args.shell](tree)
    sys.stdout.write(script)
    return 0


def model_names() -> list[str]:
    """Catalog names and imported names (no llama.cpp, no network)."""
    from r1chat.core.errors import R1ChatError
    from r1chat.models import store
    from r1chat.models.catalog import load_catalog

    try:
        names = [e.name for e in load_catalog().listed()]
        return names + sorted(store.load_index())
    except R1ChatError:
        return []


Tree = dict[str, Any]  # {"options": [...], "choices": {opt: [...]}, "commands": {name: Tree}}


def command_tree(parser: argparse.ArgumentParser) -> Tree:
    options: list[str] = []
    choices: dict[str, list[str]] = {}
    commands: dict[str, Tree] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = command_tree(sub)
        elif action.option_strings and action.help is not argparse.SUPPRESS:
            options += action.option_strings
            if action.choices:
                for opt in action.option_strings:
                    choices[opt] = [str(c) for c in action.choices]
    return {"options": options, "choices": choices, "commands": commands}


def _words(items: list[str]) -> str:
    return " ".join(items)


def bash(tree: Tree) -> str:
    """A bash completion function (zsh loads the same through bashcompinit)."""
    cases = []
    for name, cmd in tree["commands"].items():
        subs = cmd["commands"]
        inner = [f'        "") words="{_words([*subs, *cmd["options"]])}";;']
        for sub_name, sub in subs.items():
            inner.append(f'        {sub_name}) words="{_words(sub["options"])}";;')
        cases.append(f'    {name})\n      case "$sub" in\n' + "\n".join(inner) + "\n      esac;;")
    choice_cases = []
    for cmd in [tree, *tree["commands"].values()]:
        for opt, values in cmd["choices"].items():
            choice_cases.append(
                f'    {opt}) COMPREPLY=($(compgen -W "{_words(values)}" -- "$cur")); return;;'
            )
    choice_cases = list(dict.fromkeys(choice_cases))
    model_positional = "|".join(sorted(MODEL_POSITIONAL))
    return f"""# r1chat completion for bash (eval "$(r1chat completion bash)")
_r1chat_offer() {{ COMPREPLY=($(compgen -W "$1" -- "$cur")); }}
_r1chat_models() {{ r1chat completion --models 2>/dev/null; }}
_r1chat() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  local cmd="" sub="" w words
  for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
    case "$w" in
      -*) ;;
      *) if [ -z "$cmd" ]; then cmd="$w"; elif [ -z "$sub" ]; then sub="$w"; fi;;
    esac
  done
  case "$prev" in
    {"|".join(MODEL_OPTIONS)}) _r1chat_offer "$(_r1chat_models)"; return;;
    {"|".join(FILE_OPTIONS)}) COMPREPLY=($(compgen -f -- "$cur")); return;;
{chr(10).join(choice_cases)}
  esac
  if [ "$cmd" = models ] && [[ "$sub" =~ ^({model_positional})$ ]] && [[ "$cur" != -* ]]; then
    _r1chat_offer "$(_r1chat_models)"; return
  fi
  case "$cmd" in
    "") words="{_words([*tree["commands"], *tree["options"]])}";;
{chr(10).join(cases)}
    *) words="";;
  esac
  _r1chat_offer "$words"
}}
complete -o default -F _r1chat r1chat
"""


def zsh(tree: Tree) -> str:
    return '# r1chat completion for zsh (eval "$(r1chat completion zsh)")\n' + (
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(tree).split("\n", 1)[1]
    )


def fish(tree: Tree) -> str:
    lines = ["# r1chat completion for fish", "complete -c r1chat -f"]
    names = list(tree["commands"])
    top = "not __fish_seen_subcommand_from " + " ".join(names)
    for name in names:
        lines.append(f"complete -c r1chat -n '{top}' -a {name}")
    models = "(r1chat completion --models 2>/dev/null)"
    for name, cmd in tree["commands"].items():
        cond = f"__fish_seen_subcommand_from {name}"
        for sub in cmd["commands"]:
            lines.append(f"complete -c r1chat -n '{cond}' -a {sub}")
        if name == "models":
            subs = " ".join(sorted(MODEL_POSITIONAL))
            when = f"{cond}; and __fish_seen_subcommand_from {subs}"
            lines.append(f"complete -c r1chat -n '{when}' -a '{models}'")
        for opt in {o for c in [cmd, *cmd["commands"].values()] for o in c["options"]}:
            flag = f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}"
            extra = ""
            if opt in MODEL_OPTIONS:
                extra = f" -xa '{models}'"
            elif opt in FILE_OPTIONS:
                extra = " -rF"
            elif values := {**cmd["choices"]}.get(opt):
                extra = f" -xa '{_words(values)}'"
            lines.append(f"complete -c r1chat -n '{cond}' {flag}{extra}")
    return "\n".join(lines) + "\n"
