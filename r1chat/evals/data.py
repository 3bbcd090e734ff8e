"""A benchmark's questions: fetched from the Hub once (kept beside the models, checked
against the digest the Hub publishes), or read from the user's own file (`--data`)."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from r1chat.config.paths import models_dir
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.evals.benches import Bench

ALIASES = {"question": ("problem", "Problem", "Question"), "answer": ("Answer", "solution")}
"""Other names a `--data` file may give the question and answer columns."""


@dataclass(frozen=True, slots=True)
class Question:
    """One question: `answer` is the reference (for choices, the right one's text) and
    `wrong` the other choices."""

    id: str
    text: str
    answer: str
    wrong: tuple[str, ...] = ()


def questions(bench: Bench, data: Path | None = None) -> list[Question]:
    """Every question of `bench`, from `data` when given, else from the Hub (cached)."""
    files = [data] if data is not None else [fetch(bench, f) for f in bench.files]
    rows = [row for path in files for row in _rows(path, bench)]
    out = [_question(bench, row, i, files[-1]) for i, row in enumerate(rows)]
    if not out:
        raise UsageError(f"{files[0]} holds no questions")
    if len({q.id for q in out}) != len(out):
        out = [Question(str(i + 1), q.text, q.answer, q.wrong) for i, q in enumerate(out)]
    return out


def digest(items: list[Question]) -> str:
    """What a run was asked, in 16 hex digits: a resumed run must be asked the same."""
    text = json.dumps([asdict(q) for q in items], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fetch(bench: Bench, name: str) -> Path:
    """`bench`'s file `name`, downloaded once under the models folder and verified."""
    folder = models_dir() / "eval-data" / bench.repo
    local = folder / name
    mark = local.with_name(local.name + ".sha256")
    if local.is_file() and mark.is_file() and _sha256(local) == mark.read_text().strip():
        return local
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    from r1chat.models.hub_repos import hub_errors

    try:
        url = hf_hub_url(bench.repo, name, repo_type="dataset", revision=bench.revision)
        published = (get_hf_file_metadata(url).etag or "").strip('"')
        got = Path(
            hf_hub_download(
                bench.repo,
                name,
                repo_type="dataset",
                revision=bench.revision,
                local_dir=folder,
            )
        )
    except hub_errors() as e:
        raise _fetch_error(e, bench) from None
    body = got.read_bytes()
    if published and published not in (_sha256(got), _git_sha1(body)):
        got.unlink(missing_ok=True)
        raise R1ChatError(
            f"{bench.repo}/{name} did not match the digest the Hub publishes; it was "
            "removed, run again"
        )
    mark.write_text(_sha256(got) + "\n")
    return got


def _fetch_error(e: BaseException, bench: Bench) -> R1ChatError:
    from huggingface_hub import constants
    from huggingface_hub import errors as hfe

    from r1chat.models.hub_repos import network_reason

    page = f"{constants.ENDPOINT}/datasets/{bench.repo}"
    own = "or pass a copy you have with --data FILE"
    if isinstance(e, hfe.GatedRepoError):
        return R1ChatError(
            f"{bench.title} ({bench.repo}) is gated: accept its terms at {page} and set "
            f"HF_TOKEN to a token of that account, {own}"
        )
    if isinstance(e, hfe.RepositoryNotFoundError | hfe.RemoteEntryNotFoundError):
        return R1ChatError(f"{bench.title} was not found at {page}; {own}")
    if isinstance(e, hfe.OfflineModeIsEnabled):
        return R1ChatError(f"HF_HUB_OFFLINE is set, so {bench.title} cannot be fetched; {own}")
    if isinstance(e, hfe.HfHubHTTPError):
        status = e.response.status_code if e.response is not None else "?"
        return R1ChatError(f"the Hub answered HTTP {status} for {bench.repo}; {own}")
    return R1ChatError(f"cannot fetch {bench.title} from {page}: {network_reason(e)}; {own}")


def _rows(path: Path, bench: Bench) -> list[dict[str, Any]]:
    try:
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f))
        if path.suffix == ".parquet":
            return _parquet(path)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if path.suffix == ".json":
        rows = json.loads(text)
        return rows if isinstance(rows, list) else []
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                raise UsageError(f"{path} line {n} is not JSON (one object a line)") from None
            out.append(row if isinstance(row, dict) else {})
    return out


def _parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise R1ChatError(
            f"{path.name} is a parquet file, which needs pyarrow: pipx inject r1chat pyarrow "
            "(or pip install 'r1chat[eval]')"
        ) from None
    return list(pq.read_table(path).to_pylist())


def _question(bench: Bench, row: dict[str, Any], index: int, path: Path) -> Question:
    def field(ours: str) -> str:
        for name in (bench.fields.get(ours, ours), ours, *ALIASES.get(ours, ())):
            if row.get(name) not in (None, ""):
                return str(row[name]).strip()
        return ""

    text, answer = field("question"), field("answer")
    if not text or not answer:
        what = "question" if not text else "answer"
        raise UsageError(f"{path}: row {index + 1} has no {what} ({bench.fields[what]!r})")
    wrong = tuple(w for k in ("wrong1", "wrong2", "wrong3") if (w := field(k)))
    if bench.kind == "choice" and len(wrong) != 3:
        raise UsageError(f"{path}: row {index + 1} has not three wrong choices")
    return Question(field("id") or str(index + 1), text, answer, wrong)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git_sha1(body: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()  # git's blob id
