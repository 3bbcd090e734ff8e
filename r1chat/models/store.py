"""Installed models: downloaded catalog files, imported GGUFs, and name -> path resolution.

Layout under `paths.models_dir()`:

    <owner>/<repo>/<file>.gguf          a verified download (only ever renamed into place)
    <owner>/<repo>/<file>.gguf.part     an unfinished download, resumed by the next pull
    <owner>/<repo>/<file>.gguf.part.json   which remote object the .part belongs to
    <owner>/<repo>/.<file>.gguf.lock    held (flock) while a pull or rm works on the file
    imported/<file>.gguf                files copied in by `models import --copy`
    imported.json                       the index of imported names -> paths

A file under its final name is always complete and verified; a catalog model is
installed when all its files are there.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1chat.config import paths
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.units import human
from r1chat.models import jsonfile
from r1chat.models.gguf import not_a_model_file
from r1chat.models.locks import FileLock

if TYPE_CHECKING:
    from r1chat.config.file import Config
    from r1chat.models.catalog import Catalog, Entry

DEFAULT_MODEL = "r1:7b"
INDEX = "imported.json"
_IMPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")


# -- catalog files on disk -----------------------------------------------------------


def entry_dir(entry: Entry) -> Path:
    """Where a catalog entry's files live (shared by every quant of one repo)."""
    if not entry.repo:
        raise R1ChatError(f"{entry.name} has no files to store (remote-only model)")
    owner, name = entry.repo.split("/", 1)
    return paths.models_dir() / owner / name


def entry_paths(entry: Entry) -> list[Path]:
    """Local paths of the entry's files; the first is what llama.cpp loads."""
    folder = entry_dir(entry)
    return [folder / f for f in entry.files]


def part_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def part_meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".part.json")


def lock_path(entry: Entry) -> Path:
    return entry_dir(entry) / f".{entry.files[0]}.lock"


def is_installed(entry: Entry) -> bool:
    return not entry.remote and bool(entry.files) and all(p.is_file() for p in entry_paths(entry))


@dataclass(frozen=True, slots=True)
class InstallState:
    installed: bool
    have: int  # bytes on disk: finished files and partial downloads
    partial: bool  # an interrupted download waits to be resumed

    def describe(self, size: int) -> str:
        if self.installed:
            return "installed"
        if self.partial:
            pct = min(99, self.have * 100 // size) if size else 0
            return f"partial {pct}%"
        return "-"


def state(entry: Entry) -> InstallState:
    if entry.remote or not entry.files:
        return InstallState(False, 0, False)
    have, partial, complete = 0, False, True
    for p in entry_paths(entry):
        if p.is_file():
            have += p.stat().st_size
            continue
        complete = False
        part = part_path(p)
        if part.is_file():
            have += part.stat().st_size
            partial = True
    return InstallState(complete, have, partial and not complete)


def installed_entries(catalog: Catalog) -> list[Entry]:
    return [e for e in catalog.listed() if is_installed(e)]


# -- locks -----------------------------------------------------------------------------


def entry_lock(entry: Entry, doing: str = "downloading") -> FileLock:
    busy = (
        f"another r1chat is {doing} {entry.name} ({entry.files[0]}); "
        "wait for it to finish or stop it"
    )
    return FileLock(lock_path(entry), busy)


# -- imported models -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Imported:
    name: str
    path: str
    copied: bool = False
    size: int = 0
    added: float = 0.0


def index_path() -> Path:
    return paths.models_dir() / INDEX


def load_index() -> dict[str, Imported]:
    raw = jsonfile.read(index_path(), "the list of imported models")
    out: dict[str, Imported] = {}
    for name, rec in raw.get("models", {}).items():
        if isinstance(rec, dict) and isinstance(rec.get("path"), str):
            out[name] = Imported(
                name,
                rec["path"],
                bool(rec.get("copied")),
                int(rec.get("size", 0)),
                float(rec.get("added", 0)),
            )
    return out


def save_index(index: dict[str, Imported]) -> None:
    data = {
        "models": {n: {k: v for k, v in asdict(r).items() if k != "name"} for n, r in index.items()}
    }
    jsonfile.write(index_path(), data)


def default_import_name(path: Path) -> str:
    stem = re.sub(
        r"-\d{5}-of-\d{5}$",
        "",
        path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.stem,
    )
    name = re.sub(r"[^a-z0-9._:-]+", "-", stem.lower()).strip("-.")
    return name or "model"


def import_model(
    file: str | Path, *, name: str | None = None, copy: bool = False, catalog: Catalog | None = None
) -> Imported:
    """Register a GGUF already on disk under a name (copying it in if asked)."""
    from r1chat.models.fit import split_files
    from r1chat.models.gguf import read_gguf

    src = Path(file).expanduser().absolute()
    info = read_gguf(src)  # clear errors: missing, not GGUF, truncated
    shards = split_files(src)
    if len(shards) > 1 or int(info.metadata.get("split.count", 1) or 1) > 1:
        missing = [p.name for p in shards if not p.exists()]
        if missing:
            raise R1ChatError(f"{src.name} is one part of a split GGUF; missing {missing[0]}")
    name = (name or default_import_name(src)).strip().lower()
    if not _IMPORT_NAME.match(name):
        raise UsageError(
            f"bad model name {name!r} (use lowercase letters, digits, '.', ':', '-', '_')"
        )
    if catalog is None:
        from r1chat.models.catalog import load_catalog

        catalog = load_catalog()
    if name in catalog:
        raise UsageError(f"{name} is a catalog name; choose another with --name")
    index = load_index()
    old = index.get(name)
    if old and Path(old.path) != src and not (old.copied and copy):
        raise UsageError(
            f"{name} is already imported ({old.path}); choose another --name "
            f"or run: r1chat models rm {name}"
        )
    size = sum(p.stat().st_size for p in shards)
    made: list[Path] = []  # the copies this call wrote: removed again if it fails
    try:
        path = _copy_in(shards, size, made) if copy else src
        record = Imported(name, str(path), copy, size, time.time())
        index[name] = record
        save_index(index)
    except OSError as e:
        for leftover in made:
            leftover.unlink(missing_ok=True)
        where = e.filename or paths.models_dir()
        raise R1ChatError(f"cannot import {src.name}: {e.strerror or e} ({where})") from None
    return record


def _copy_in(shards: list[Path], size: int, made: list[Path]) -> Path:
    """Copy the files of one model into the models folder's `imported/` (each through a
    `.part`, listed in `made` as it is created); the path of the first."""
    dest = paths.models_dir() / "imported"
    dest.mkdir(parents=True, exist_ok=True)
    free = free_bytes(dest)
    if free < size:
        raise R1ChatError(
            f"not enough disk space in {dest} to copy {shards[0].name}: "
            f"needs {human(size)}, {human(free)} free"
        )
    for shard in shards:
        target = dest / shard.name
        if target.exists() and target.resolve() != shard.resolve():
            raise R1ChatError(f"{target} exists already; remove it or import without --copy")
        tmp = target.with_name(target.name + ".part")
        made.append(tmp)
        shutil.copyfile(shard, tmp)
        os.replace(tmp, target)
        made.append(target)
    return dest / shards[0].name


# -- resolution ------------------------------------------------------------------------


def _looks_like_path(spec: str) -> bool:
    """A path, not a name (`owner/repo:quant`, a Hub model's name, is a name)."""
    from r1chat.models.hub_repos import parse_spec

    if parse_spec(spec) is not None:
        return False
    return (
        "/" in spec
        or os.sep in spec
        or spec.startswith((".", "~"))
        or spec.lower().endswith(".gguf")
    )


def resolve_model(spec: str, *, catalog: Catalog | None = None) -> Path:
    """The GGUF file for `-m/--model SPEC`: an existing path, an imported name, or a
    catalog name (which must be installed). For a split model, the first shard.

    Raises R1ChatError with the fix in it, e.g.
    "model r1:7b is not installed; run: r1chat models pull r1:7b".
    """
    from r1chat.models.hub_repos import hub_name, parse_spec

    spec = spec.strip()
    if not spec:
        raise UsageError("no model given")
    path = Path(spec).expanduser()
    if _looks_like_path(spec) or path.exists():
        if path.is_file():
            return path.absolute()
        if (why := not_a_model_file(path)) is not None:
            raise R1ChatError(why)
        if _looks_like_path(spec):
            raise R1ChatError(f"no such file: {spec}")
    hub = parse_spec(spec)
    key = spec.lower() if hub is None else hub_name(*hub)
    imported = load_index().get(key)
    if imported is not None:
        p = Path(imported.path)
        if not p.is_file():
            raise R1ChatError(
                f"imported model {key} points to a missing file {p}; "
                f"re-import it or run: r1chat models rm {key}"
            )
        return p
    if catalog is None:
        from r1chat.models.catalog import load_catalog

        catalog = load_catalog()
    entry = catalog.get(key)
    if entry is None and hub is not None:
        raise R1ChatError(f"{key} is not installed; run: r1chat models pull {key}")
    if entry is None:
        from r1chat.models.catalog import suggest

        names = [*catalog.entries, *load_index()]
        raise R1ChatError(
            f"unknown model {spec!r}{suggest(key, names)}: give a catalog "
            "name (see: r1chat models), an imported name or a GGUF file path"
        )
    if entry.remote:
        raise R1ChatError(
            f"{entry.name} ({entry.title}) is too big to run here: "
            "serve it with an OpenAI-compatible server and use a remote"
        )
    if is_installed(entry):
        return entry_paths(entry)[0]
    st = state(entry)
    pct = st.have * 100 // entry.size if entry.size else 0
    note = f" (a download stopped at {min(pct, 99)}%)" if st.partial else ""
    raise R1ChatError(
        f"model {entry.name} is not installed{note}; run: r1chat models pull {entry.name} "
        "(or use a GGUF you have: r1chat models import FILE)"
    )


def default_model(config: Config | None = None, catalog: Catalog | None = None) -> str:
    """The model to use without -m: config `[model] default`, else r1:7b if installed,
    else the first installed catalog model, else the first imported one, else the model
    recommended for this machine (whose resolution error then says how to get it)."""
    if config is None:
        from r1chat.config.file import Config

        config = Config.load()
    name = config.values.model.default
    if name:
        return name.strip()
    if catalog is None:
        from r1chat.models.catalog import load_catalog

        catalog = load_catalog()
    if (e := catalog.get(DEFAULT_MODEL)) and is_installed(e):
        return DEFAULT_MODEL
    installed = installed_entries(catalog)
    if installed:
        return installed[0].name
    imported = load_index()
    return next(iter(sorted(imported)), None) or recommended_model(catalog)


def recommended_model(catalog: Catalog) -> str:
    """The catalog model for this machine (`r1chat doctor` recommends the same)."""
    from r1chat.models import hardware
    from r1chat.models.fit import recommend

    best = recommend(catalog, hardware.current())
    return best[0].name if best else DEFAULT_MODEL


def set_default_model(
    spec: str, *, catalog: Catalog | None = None, config: Config | None = None
) -> str:
    """Store `[model] default` (a path is stored absolute); returns what was stored.

    `config`: the Config to change and save (a running chat passes its own, so its next
    save keeps the new default); else the config file is loaded."""
    from r1chat.config.file import Config

    spec = spec.strip()
    value = spec
    path = Path(spec).expanduser()
    if _looks_like_path(spec) or path.is_file():
        if not path.is_file():
            raise R1ChatError(not_a_model_file(path) or f"no such file: {spec}")
        value = str(path.absolute())
    elif spec.lower() not in load_index():
        if catalog is None:
            from r1chat.models.catalog import load_catalog

            catalog = load_catalog()
        value = catalog.require(spec).name
    cfg = config if config is not None else Config.load()
    cfg.set("model", "default", value)
    cfg.save()
    return value


# -- removal ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Removal:
    name: str
    paths: tuple[Path, ...]  # files that will be / were deleted
    bytes: int
    forget_only: bool = False  # an imported name whose file stays where it is


def plan_removal(spec: str, *, catalog: Catalog | None = None) -> Removal:
    key = spec.strip().lower()
    imported = load_index().get(key)
    if imported is not None:
        p = Path(imported.path)
        files = [p] if imported.copied else []
        if imported.copied:
            from r1chat.models.fit import split_files

            files = [s for s in split_files(p) if s.exists()]
        return Removal(
            key,
            tuple(files),
            sum(f.stat().st_size for f in files if f.exists()),
            forget_only=not imported.copied,
        )
    if catalog is None:
        from r1chat.models.catalog import load_catalog

        catalog = load_catalog()
    entry = catalog.require(spec)
    if entry.remote:
        raise R1ChatError(f"{entry.name} is remote-only; nothing to remove")
    found: list[Path] = []
    for p in entry_paths(entry):
        found += [q for q in (p, part_path(p), part_meta_path(p)) if q.exists()]
    if not found:
        raise R1ChatError(f"model {entry.name} is not installed")
    return Removal(entry.name, tuple(found), sum(q.stat().st_size for q in found))


def remove_model(spec: str, *, catalog: Catalog | None = None) -> Removal:
    """Delete a downloaded model (and any partial download) or forget an imported one."""
    removal = plan_removal(spec, catalog=catalog)
    index = load_index()
    if removal.name in index:
        for p in removal.paths:
            p.unlink(missing_ok=True)
        del index[removal.name]
        save_index(index)
        return removal
    if catalog is None:
        from r1chat.models.catalog import load_catalog

        catalog = load_catalog()
    entry = catalog.require(spec)
    with entry_lock(entry, doing="downloading"):
        for p in removal.paths:
            p.unlink(missing_ok=True)
    lock_path(entry).unlink(missing_ok=True)
    if entry.hub and entry.quant:
        from r1chat.models import hub_index

        hub_index.remove_quant(entry.model, entry.quant)
    folder = entry_dir(entry)
    for d in (folder, folder.parent):
        try:
            d.rmdir()  # only if empty
        except OSError:
            break
    return removal


# -- small helpers ---------------------------------------------------------------------


def free_bytes(folder: Path) -> int:
    """Free space where `folder` lives (its nearest existing parent's filesystem)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def describe_path(path: Path) -> dict[str, Any]:
    """Facts about a local GGUF for `models info`."""
    from r1chat.models.fit import split_total_size
    from r1chat.models.gguf import read_gguf

    info = read_gguf(path)
    return {
        "path": str(path),
        "name": info.name,
        "architecture": info.architecture,
        "layers": info.block_count,
        "size": split_total_size(path, info.metadata),
        "context": int(info.arch_key("context_length", 0) or 0),
        "kv_heads": info.arch_key("attention.head_count_kv"),
        "heads": info.arch_key("attention.head_count"),
        "embedding": info.arch_key("embedding_length"),
        "file_type": info.metadata.get("general.file_type"),
        "prompt_format": info.prompt_format,
    }
