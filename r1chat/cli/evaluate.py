"""`r1chat eval`: the R1 card's benchmark protocol on the user's model (`r1chat.evals`),
its figure beside the card's; `eval --resume` continues a stopped run, `eval show` shows
one again."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1chat.config.options import add_model_options
from r1chat.core.errors import UsageError

if TYPE_CHECKING:
    from r1chat.config.settings import Settings
    from r1chat.evals.runner import Progress
    from r1chat.evals.store import EvalStore, Run

DEFAULT_SAMPLES = 4
MAX_TOKENS = 32_768
PROMPT_ROOM = 2_048
"""Context kept for the prompt beside the reply's tokens (a GPQA question is ~600)."""

OUTCOME_WORDS = (
    ("right", "right"),
    ("wrong", "wrong answer"),
    ("unclosed", "reasoning never closed"),
    ("cut", "cut by max tokens"),
    ("unread", "nothing to read"),
    ("failed", "failed"),
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="score a model on the R1 card's benchmarks (MATH-500, AIME, GPQA), card beside",
        description="Run a benchmark as DeepSeek's R1 model card did (no system prompt, "
        "temperature 0.6, top-p 0.95, up to 32,768 tokens, K samples a question: pass@1 "
        "and cons@K) and show the figure beside the card's. `r1chat eval show [RUN]` shows "
        "a run again; `r1chat eval --resume [RUN]` continues a stopped one.",
    )
    p.add_argument("target", nargs="*", metavar="MODEL", help="the model (or: show [RUN])")
    p.add_argument("--bench", help="math500, aime24, aime25 or gpqa")
    p.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        metavar="K",
        help=f"replies a question ({DEFAULT_SAMPLES}; the card: 64)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="replies at once on a local model (default: K; fewer needs less memory)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="the first N questions only")
    p.add_argument(
        "--max-tokens",
        type=int,
        default=MAX_TOKENS,
        metavar="N",
        help=f"a reply's cap ({MAX_TOKENS:,}, or what the context allows)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="the run's seed (0)")
    p.add_argument("--data", type=Path, metavar="FILE", help="the questions from FILE")
    p.add_argument("--resume", nargs="?", type=int, const=0, metavar="RUN", help="continue")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from r1chat.evals.store import EvalStore

    store = EvalStore()
    try:
        if args.target[:1] == ["show"]:
            return _show(store, args)
        return _evaluate(store, args)
    finally:
        store.close()


def _show(store: EvalStore, args: argparse.Namespace) -> int:
    if len(args.target) > 2 or (len(args.target) == 2 and not args.target[1].isdigit()):
        raise UsageError("usage: r1chat eval show [RUN]")
    if len(args.target) == 1 and not args.json:
        runs = store.runs()
        if not runs:
            print("no eval runs yet: r1chat eval MODEL --bench math500")
        for r in runs:
            print(_run_line(store, r))
        return 0
    r = store.run(int(args.target[1]) if len(args.target) == 2 else None)
    _report(store, r, args.json)
    return 0


def _evaluate(store: EvalStore, args: argparse.Namespace) -> int:
    from r1chat.evals import data
    from r1chat.evals.benches import bench
    from r1chat.evals.runner import Evaluation

    r = _resumed(store, args) if args.resume is not None else None
    if r is None:
        settings, spec = _new(args)
    else:
        settings, spec = _settings_of(r), r.spec
    b = bench(spec.bench)
    questions = data.questions(b, Path(spec.data_file) if spec.data_file else None)
    questions = questions[: spec.limit] if spec.limit else questions
    if r is None:
        r = store.new_run(replace(spec, data=data.digest(questions)))
    elif data.digest(questions) != spec.data:
        raise UsageError(f"the questions of run {r.id} changed since it began; start a new run")
    evaluation = Evaluation(store, r, b, questions, settings)
    try:
        r = store.relabel(r, {**r.spec.label, **evaluation.load(), **_names(settings)})
        evaluation.run = r
        evaluation.go(_printer(b.title))
    except KeyboardInterrupt:
        _clear_line()
        n = len(store.samples(r))
        print(
            f"stopped: {n:,} samples stored; r1chat eval --resume {r.id} continues",
            file=sys.stderr,
        )
        raise
    _clear_line()
    _report(store, store.run(r.id), args.json)
    return 0


def _resumed(store: EvalStore, args: argparse.Namespace) -> Run:
    r = store.run(args.resume or None, unfinished=not args.resume)
    if r.finished:
        raise UsageError(f"run {r.id} is finished (r1chat eval show {r.id} shows it)")
    if args.target or args.bench:
        raise UsageError("--resume continues a run as it was begun: give no model or --bench")
    return r


def _new(args: argparse.Namespace) -> tuple[Settings, Any]:
    from r1chat.config.file import Config
    from r1chat.config.settings import resolve
    from r1chat.evals.store import RunSpec

    if not args.bench:
        raise UsageError("which benchmark? --bench math500, aime24, aime25 or gpqa")
    if len(args.target) > 1:
        raise UsageError(f"one model at a time, not {len(args.target)}")
    if args.target and args.model:
        raise UsageError("give the model once: as MODEL or as -m")
    parallel = args.parallel or args.samples
    floors = [("--samples", args.samples, 1), ("--max-tokens", args.max_tokens, 16)]
    floors.append(("--parallel", parallel, 1))
    for name, value, least in floors:
        if value < least:
            raise UsageError(f"{name} must be at least {least}, not {value}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    from r1chat.evals.benches import bench

    b = bench(args.bench)
    if args.data is not None and not args.data.is_file():
        raise UsageError(f"--data {args.data}: no such file")
    cli = {**vars(args), "model": args.model or (args.target[0] if args.target else None)}
    settings = resolve(Config.load(), cli)
    if not settings.endpoint and not settings.model:  # the default, named: a resume uses it
        from r1chat.models.store import default_model

        settings = replace(settings, model=default_model())
    settings = replace(settings, sequences=1 if settings.endpoint else parallel)
    n_ctx, max_tokens = _sized(settings, args.max_tokens)
    settings = replace(settings, n_ctx=n_ctx)
    spec = RunSpec(
        model=settings.model or "",
        bench=b.name,
        samples=args.samples,
        parallel=parallel,
        limit=args.limit,
        max_tokens=max_tokens,
        seed=args.seed,
        data="",
        data_file=str(args.data.resolve()) if args.data else None,
        endpoint=settings.endpoint,
        api_key_env=settings.api_key_env,
        n_ctx=n_ctx or 0,
        threads=settings.threads,
        gpu_layers=settings.gpu_layers,
        kv_type=settings.kv_type,
        label={"max_tokens_asked": args.max_tokens},
    )
    return settings, spec


def _sized(settings: Settings, asked: int) -> tuple[int | None, int]:
    """(context a sample, its max tokens): room for the prompt and `asked` tokens, as far
    as the machine fits K of them; a server sizes its own context."""
    if settings.endpoint:
        return None, asked
    from r1chat.launch.local import largest_context

    assert settings.model is not None
    n_ctx = settings.n_ctx or min(
        -(-(asked + PROMPT_ROOM) // 256) * 256, largest_context(settings.model, settings)
    )
    return n_ctx, max(min(asked, n_ctx - PROMPT_ROOM), 16)


def _settings_of(r: Run) -> Settings:
    from r1chat.config.settings import Settings

    s = r.spec
    return Settings(
        model=s.model or None,
        n_ctx=s.n_ctx or None,
        threads=s.threads,
        gpu_layers=s.gpu_layers,
        kv_type=s.kv_type,
        endpoint=s.endpoint,
        api_key_env=s.api_key_env,
        sequences=1 if s.endpoint else s.parallel,
    )


def _names(settings: Settings) -> dict[str, Any]:
    """What else the model is called (its catalog title) and its quant, for the card."""
    if settings.endpoint or not settings.model:
        return {}
    from r1chat.launch.local import model_path
    from r1chat.models.catalog import load_catalog
    from r1chat.models.hub_repos import quant_of

    entry = load_catalog().get(settings.model)
    path = model_path(settings.model)
    title = entry.title if entry else ""
    return {"title": title, "quant": quant_of(path.name) or "", "file": path.name}


# -- output ----------------------------------------------------------------------------


def _printer(title: str) -> Any:
    """Progress on stderr: one line kept current on a terminal, else one a tenth."""
    live = sys.stderr.isatty()
    shown = [-1]

    def show(p: Progress) -> None:
        tenth = 10 * p.stored // max(p.total, 1)
        if not live and tenth == shown[0] and p.stored < p.total:
            return
        shown[0] = tenth
        eta = f" · ETA {_duration(p.eta_s)}" if p.eta_s is not None and p.stored < p.total else ""
        line = (
            f"{title}: {p.questions_done}/{p.questions} questions · {p.stored}/{p.total} "
            f"samples · pass@1 {p.score.pass1:.1f} ± {p.score.stderr:.1f} · "
            f"{p.tokens_per_s:.1f} tok/s{eta}"
        )
        print(f"\r\x1b[2K{line}" if live else line, end="" if live else "\n", file=sys.stderr)
        sys.stderr.flush()

    return show


def _clear_line() -> None:
    if sys.stderr.isatty():
        print("\r\x1b[2K", end="", file=sys.stderr)


def _duration(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _card(r: Run) -> tuple[str, float] | None:
    from r1chat.evals.benches import card_figure

    label = r.spec.label
    names = [label.get("title", ""), label.get("name", ""), label.get("file", ""), r.spec.model]
    return card_figure([n for n in names if n], r.spec.bench)


def _report(store: EvalStore, r: Run, as_json: bool) -> None:
    from r1chat.evals.benches import bench
    from r1chat.evals.scores import score

    got = score(store.samples(r))
    card = _card(r)
    if as_json:
        out = {
            "run": r.id,
            "finished": r.finished is not None,
            "score": {**asdict(got), "outcomes": dict(got.outcomes)},
            "card": {"model": card[0], "pass1": card[1]} if card else None,
            "spec": asdict(r.spec),
        }
        print(json.dumps(out))
        return
    s, label = r.spec, r.spec.label
    model = label.get("title") or label.get("name") or s.model
    quant = f" ({label['quant']})" if label.get("quant") else ""
    where = s.endpoint or label.get("offload", "")
    ctx = f" · context {s.n_ctx:,} × {label.get('sequences', 1)}" if s.n_ctx else ""
    asked = label.get("max_tokens_asked", s.max_tokens)
    cap = f"{s.max_tokens:,}"
    if asked > s.max_tokens:
        cap += f" (what the context allows; {asked:,} asked)"
    theirs = f"{card[1]:.1f} ({card[0]}, pass@1 of 64)" if card else "— (no card figure)"
    state = "" if r.finished else " · unfinished (r1chat eval --resume continues it)"
    lines = [
        f"r1chat eval · {bench(s.bench).title} · run {r.id}{state}",
        f"model      {model}{quant} · {where}{ctx} · KV {s.kv_type}",
        f"protocol   {s.samples} sample{'s' if s.samples > 1 else ''} a question · "
        f"temperature 0.6 · top-p 0.95 · seed {s.seed}",
        f"max tokens {cap}",
        f"questions  {got.questions}" + (f" (--limit {s.limit})" if s.limit else ""),
        "",
        f"{'':12}{'pass@1':>16}{f'cons@{s.samples}':>10}   card",
        f"{'yours':12}{f'{got.pass1:.1f} ± {got.stderr:.1f}':>16}{got.cons:>10.1f}   " + theirs,
        "",
        f"samples    {got.samples:,}: "
        + " · ".join(f"{w} {got.outcomes.get(k, 0):,}" for k, w in OUTCOME_WORDS[:2]),
        "also wrong " + " · ".join(f"{w} {got.outcomes.get(k, 0):,}" for k, w in OUTCOME_WORDS[2:]),
        f"reasoning  {got.reasoning_tokens:,.0f} tokens a sample on average · "
        f"{got.tokens:,} tokens generated",
    ]
    print("\n".join(lines))


def _run_line(store: EvalStore, r: Run) -> str:
    from r1chat.evals.scores import score

    got = score(store.samples(r))
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started))
    state = "" if r.finished else "  (unfinished)"
    model = r.spec.label.get("title") or r.spec.model
    return (
        f"{r.id:>4}  {when}  {r.spec.bench:<8} {model}  pass@1 {got.pass1:.1f} ± "
        f"{got.stderr:.1f}  {got.questions} q × {r.spec.samples}{state}"
    )
