"""Any GGUF repository on the Hub: what it holds, a search, and its catalog table.

Names as Ollama and llama.cpp take them: `OWNER/REPO:QUANT`, `hf.co/OWNER/REPO:QUANT`, or
`OWNER/REPO` (then the quantization that fits this machine best). Everything goes through
huggingface_hub's `HfApi`: `model_info(files_metadata=True)` gives a repo's files with
their sizes and LFS sha256 in one call; `list_models` finds repos.

Before a file is on disk its KV-cache shape is unknown: it is taken from the catalog model
of the same architecture nearest in size (`estimated`), and replaced by the GGUF header's
once the first file is pulled (`models.hub_index`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from r1chat.core.errors import R1ChatError, UnknownModel
from r1chat.core.units import human
from r1chat.models.hub_index import HUB_PREFIX

if TYPE_CHECKING:
    from r1chat.models.catalog import Catalog, Entry
    from r1chat.models.fit import Fit
    from r1chat.models.hardware import Hardware

DEFAULT_QUERY = "DeepSeek-R1"
PREFERRED = "Q4_K_M"
_SPEC = re.compile(
    rf"^(?:{HUB_PREFIX})?"
    r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?::(?P<quant>[A-Za-z0-9_.-]+))?$"
)
_QUANT = re.compile(r"(?:^|[-_.])((?:UD-)?(?:I?Q\d(?:_[A-Z0-9]+)*|F16|BF16|F32))$", re.I)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})$")
_NOT_MODELS = re.compile(r"mmproj|imatrix", re.I)


def hub_errors() -> tuple[type[BaseException], ...]:
    """What a Hub call can raise that is the network's or the Hub's doing (not ours)."""
    import httpx2
    from huggingface_hub import errors as hfe

    return (
        hfe.HfHubHTTPError,
        hfe.OfflineModeIsEnabled,
        hfe.FileMetadataError,
        httpx2.HTTPError,
        OSError,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    """huggingface_hub's own retry warnings stay off the terminal: what finally fails is
    said in one line."""
    import logging

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def parse_spec(spec: str) -> tuple[str, str | None] | None:
    """(OWNER/REPO, QUANT or None) for a Hub name; None for anything else (a path)."""
    spec = spec.strip()
    if spec.lower().endswith(".gguf"):
        return None
    m = _SPEC.match(spec)
    if m is None:
        return None
    return m.group("repo"), (m.group("quant") or None)


def model_name(repo: str) -> str:
    """The catalog name of a Hub repo: its id, lower case."""
    return repo.lower()


def hub_name(repo: str, quant: str | None) -> str:
    """The catalog name of a Hub repo's quantization: `owner/repo:q4_k_m` (or the model)."""
    return model_name(repo) + (f":{quant.lower()}" if quant else "")


def quant_of(path: str) -> str | None:
    """`Q4_K_M` for `x-Q4_K_M.gguf`, `x.Q4_K_M-00001-of-00002.gguf` or `Q4_K_M/x.gguf`."""
    if not path.lower().endswith(".gguf") or _NOT_MODELS.search(path.rsplit("/", 1)[-1]):
        return None
    parts = path[: -len(".gguf")].split("/")
    stem = _SHARD.sub("", parts[-1])
    for candidate in (stem, *reversed(parts[:-1])):
        if m := _QUANT.search(candidate):
            return m.group(1).upper()
    return None


@dataclass(frozen=True, slots=True)
class QuantFiles:
    """One quantization's files (the shards of a split GGUF, in order)."""

    quant: str
    paths: tuple[str, ...]
    sizes: tuple[int, ...]
    sha256: tuple[str | None, ...]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @property
    def subfolder(self) -> str | None:
        folders = {p.rsplit("/", 1)[0] if "/" in p else "" for p in self.paths}
        return folders.pop() or None if len(folders) == 1 else None


@dataclass(slots=True)
class HubRepo:
    """A GGUF repository as the Hub describes it."""

    repo: str
    sha: str
    downloads: int = 0
    gated: bool = False
    arch: str = ""
    params: int = 0
    context: int = 0
    quants: dict[str, QuantFiles] = field(default_factory=dict)


def group_quants(siblings: Iterable[Any]) -> dict[str, QuantFiles]:
    """The repo's GGUF files by quantization (smallest first); other files are left out."""
    found: dict[str, list[Any]] = {}
    for s in siblings:
        quant = quant_of(s.rfilename)
        if quant is not None:
            found.setdefault(quant, []).append(s)
    out = []
    for quant, files in found.items():
        files.sort(key=lambda s: s.rfilename)
        shas = tuple((s.lfs.sha256 if s.lfs else None) for s in files)
        sizes = tuple(int(s.size or (s.lfs.size if s.lfs else 0) or 0) for s in files)
        out.append(QuantFiles(quant, tuple(s.rfilename for s in files), sizes, shas))
    return {q.quant: q for q in sorted(out, key=lambda q: q.size)}


def _info(data: Any) -> HubRepo:
    gguf = data.gguf or {}
    return HubRepo(
        repo=data.id,
        sha=data.sha or "main",
        downloads=int(data.downloads or 0),
        gated=bool(data.gated),
        arch=str(gguf.get("architecture") or ""),
        params=int(gguf.get("total") or 0),
        context=int(gguf.get("context_length") or 0),
        quants=group_quants(data.siblings or []),
    )


def repo_files(repo: str) -> HubRepo:
    """What `repo` holds (one Hub call); R1ChatError for a repo that is not there, a
    gated one without a token, or one without GGUF files."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub import errors as hfe

    if constants.is_offline_mode():
        raise R1ChatError(f"HF_HUB_OFFLINE is set, so {repo} cannot be looked up on the Hub")
    try:
        with _quiet():
            found = _info(HfApi().model_info(repo, files_metadata=True))
    except hfe.RepositoryNotFoundError:
        raise UnknownModel(f"repository {repo} not found on the Hub{_near(repo)}") from None
    except hub_errors() as e:
        raise R1ChatError(f"cannot look up {repo} on the Hub: {_why(e)}") from None
    if not found.quants:
        raise R1ChatError(f"{found.repo} has no GGUF files (r1chat runs GGUF models)")
    if found.gated and not _token():
        raise R1ChatError(
            f"{found.repo} is gated: accept its terms at {constants.ENDPOINT}/{found.repo} "
            "and set HF_TOKEN to a token of that account (or run: hf auth login)"
        )
    return found


def search(query: str, limit: int = 20) -> list[HubRepo]:
    """GGUF repos matching `query`, most downloaded first, with their files: one call for
    the list, then one per repo (several at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import HfApi, constants

    if constants.is_offline_mode():
        raise R1ChatError("HF_HUB_OFFLINE is set: the Hub cannot be searched")
    api = HfApi()
    try:
        with _quiet():
            ids = [
                m.id
                for m in api.list_models(search=query, filter="gguf", sort="downloads", limit=limit)
            ]
            with ThreadPoolExecutor(max_workers=8) as pool:
                infos = list(pool.map(lambda r: api.model_info(r, files_metadata=True), ids))
    except hub_errors() as e:
        raise R1ChatError(f"cannot search the Hub: {_why(e)}") from None
    found = [_info(i) for i in infos]
    return [r for r in found if r.quants]


def _near(repo: str) -> str:
    """`; did you mean A or B?` from the Hub's search for the repo's name."""
    from huggingface_hub import HfApi

    name = repo.split("/", 1)[-1]
    try:
        with _quiet():
            near = [m.id for m in HfApi().list_models(search=name, filter="gguf", limit=3)]
    except Exception:  # a hint only: whatever failed, the main error stands
        return ""
    return f"; did you mean {' or '.join(near)}?" if near else ""


def _token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def _why(e: BaseException) -> str:
    from huggingface_hub import errors as hfe

    if isinstance(e, hfe.HfHubHTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code}"
    return network_reason(e)


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def network_reason(e: BaseException) -> str:
    """A network error in words: `connection refused`, not `[Errno 111] Connection refused`."""
    text = _ERRNO.sub("", str(e)) or type(e).__name__
    return text[:1].lower() + text[1:]


# -- sizing -----------------------------------------------------------------------------


def like_model(found: HubRepo, size: int, catalog: Catalog) -> Entry:
    """The catalog model nearest to this one, whose KV shape stands in for its own: the
    same architecture if the catalog has it, the nearest parameter count (or size)."""
    models = [e for e in catalog.models() if not e.remote and e.layers]
    same = [e for e in models if e.arch == found.arch] or models
    if found.params:
        return min(same, key=lambda e: abs(e.params - found.params))
    return min(same, key=lambda e: abs(e.size - size))


def quant_fit(found: HubRepo, q: QuantFiles, catalog: Catalog, hw: Hardware, n_ctx: int) -> Fit:
    from r1chat.models.fit import Shape, plan

    like = like_model(found, q.size, catalog)
    return plan(Shape(q.size, like.layers, like.kv_bytes_per_token), n_ctx, hw)


def choose_quant(found: HubRepo, catalog: Catalog, hw: Hardware, n_ctx: int) -> tuple[str, str]:
    """(quant, why) for a pull without one: Q4_K_M when several fit, else the one that
    fits best (on the GPU before partly, partly before the CPU; the biggest of those)."""
    from r1chat.models.fit import Verdict

    rank = {Verdict.GPU: 0, Verdict.PARTIAL: 1, Verdict.CPU: 2}
    fits = {q: quant_fit(found, f, catalog, hw, n_ctx) for q, f in found.quants.items()}
    running = {q: f for q, f in fits.items() if f.runs}
    if not running:
        smallest = next(iter(found.quants.values()))
        raise R1ChatError(
            f"no quantization of {found.repo} fits this machine at {n_ctx:,} tokens of "
            f"context (the smallest, {smallest.quant}, needs {human(fits[smallest.quant].need)}); "
            f"name one to pull it anyway: {found.repo}:{smallest.quant}"
        )
    if PREFERRED in running and len(running) > 1:
        return PREFERRED, f"{PREFERRED}: {running[PREFERRED].label} (of {len(running)} that fit)"
    best = min(running, key=lambda q: (rank[running[q].verdict], -found.quants[q].size))
    return best, f"{best}: {running[best].label}"


def catalog_table(found: HubRepo, q: QuantFiles, catalog: Catalog) -> dict[str, Any]:
    """The catalog table (as `catalog.parse` gives it) for one pulled quantization."""
    like = like_model(found, q.size, catalog)
    prefix = f"{q.subfolder}/" if q.subfolder else ""
    return {
        "hub": True,
        "estimated": True,
        "title": found.repo,
        "repo": found.repo,
        "revision": found.sha,
        "arch": found.arch,
        "params": found.params,
        "layers": like.layers,
        "kv_heads": like.kv_heads,
        "head_dim": like.head_dim,
        "context": found.context,
        "quants": {
            q.quant: {
                "files": [p.removeprefix(prefix) for p in q.paths],
                "size": q.size,
                "sha256": [s or "" for s in q.sha256] if all(q.sha256) else None,
                "subfolder": q.subfolder,
            }
        },
    }


# -- pulling by name ---------------------------------------------------------------------


def register(found: HubRepo, quant: str, catalog: Catalog) -> str:
    """Record `found`'s `quant` as a model pulled from the Hub; returns its catalog name
    (reload the catalog to see it)."""
    from r1chat.models import hub_index

    hub_index.add(model_name(found.repo), catalog_table(found, found.quants[quant], catalog))
    return hub_name(found.repo, quant)


def plan_pull(spec: str, catalog: Catalog, hw: Hardware, n_ctx: int) -> tuple[str, str | None]:
    """(catalog name, why that quantization or None) for `models pull OWNER/REPO[:QUANT]`:
    the repo looked up, the quantization chosen when none is named, the entry recorded."""
    parsed = parse_spec(spec)
    assert parsed is not None, spec
    repo, quant = parsed
    found = repo_files(repo)
    why = None
    if quant is None:
        quant, why = choose_quant(found, catalog, hw, n_ctx)
    else:
        have = {q.upper(): q for q in found.quants}
        if quant.upper() not in have:
            raise R1ChatError(
                f"{found.repo} has no {quant.upper()}; it has: {', '.join(found.quants)}"
            )
        quant = have[quant.upper()]
    return register(found, quant, catalog), (f"{found.repo}: {why}" if why else None)


def entry_to_pull(
    name: str, load_catalog: Callable[[], Catalog], n_ctx: int
) -> tuple[Entry, str | None]:
    """The catalog entry `models pull NAME` (and serve's /api/pull) fetches: a catalog
    name, or a Hub repo's (`OWNER/REPO:QUANT`; `OWNER/REPO`: the quantization that fits
    this machine best, and why), recorded as pulled from the Hub."""
    from r1chat.models import hardware

    catalog = load_catalog()
    entry = catalog.get(name)
    if entry is not None or parse_spec(name) is None:
        return entry or catalog.require(name), None
    registered, why = plan_pull(name, catalog, hardware.current(), n_ctx)
    return load_catalog().require(registered), why
