"""The Hub side of a pull, all through huggingface_hub: URLs, metadata, auth, errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from r1chat.core.errors import R1ChatError
from r1chat.models import store
from r1chat.models.download.bodies import origin
from r1chat.models.download.types import RemoteFile
from r1chat.models.hub_repos import hub_errors, network_reason

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _hub_error(e: BaseException, entry: Entry, repo_path: str) -> R1ChatError:
    """One line for whatever the Hub or the network said."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub import errors as hfe

    repo, rev = entry.repo, entry.revision
    endpoint = constants.ENDPOINT
    if isinstance(e, hfe.GatedRepoError):
        return R1ChatError(
            f"{repo} is gated: accept its terms at {endpoint}/{repo} and set "
            "HF_TOKEN to a token of that account (or run: hf auth login)"
        )
    if isinstance(e, hfe.RepositoryNotFoundError):
        return R1ChatError(
            f"repository {repo} not found on {endpoint} (if it is private or gated, set HF_TOKEN)"
        )
    if isinstance(e, hfe.RevisionNotFoundError):
        return R1ChatError(f"revision {rev!r} not found in {repo}")
    if isinstance(e, hfe.RemoteEntryNotFoundError):
        return R1ChatError(f"{repo_path} not found in {repo} (revision {rev})")
    if isinstance(e, hfe.OfflineModeIsEnabled):
        return offline_error(entry)
    if isinstance(e, hfe.HfHubHTTPError):
        status = e.response.status_code if e.response is not None else "?"
        hint = " (set HF_TOKEN?)" if status in (401, 403) else ""
        return R1ChatError(f"the Hub answered HTTP {status} for {repo}/{repo_path}{hint}")
    if isinstance(e, httpx2.TimeoutException):
        return R1ChatError(f"timed out talking to {endpoint} for {repo_path}")
    if isinstance(e, httpx2.HTTPError):
        return R1ChatError(f"cannot reach {endpoint}: {network_reason(e)}")
    return R1ChatError(f"download of {repo_path} failed: {e}")


def offline_error(entry: Entry) -> R1ChatError:
    return R1ChatError(
        f"HF_HUB_OFFLINE is set, so {entry.name} cannot be downloaded; unset "
        "it, or register a file you have with: r1chat models import FILE"
    )


def resolve_remote(entry: Entry, index: int) -> RemoteFile:
    """HEAD one file on the Hub: size, sha256, commit and where to GET it."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    assert entry.repo is not None
    repo_path = entry.repo_paths[index]
    url = hf_hub_url(entry.repo, repo_path, revision=entry.revision)
    try:
        meta = get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except hub_errors() as e:
        raise _hub_error(e, entry, repo_path) from None
    etag = (meta.etag or "").strip('"').lower()
    if meta.size is None:
        raise R1ChatError(f"the Hub did not say the size of {entry.repo}/{repo_path}")
    if not meta.commit_hash:
        raise R1ChatError(
            f"{constants.ENDPOINT} does not look like a Hugging Face Hub "
            f"(no X-Repo-Commit for {repo_path}); check HF_ENDPOINT"
        )
    pinned = entry.sha256[index] if index < len(entry.sha256) else None
    hub_sha = etag if _HEX64.match(etag) else None
    if pinned and hub_sha and pinned != hub_sha:
        raise R1ChatError(
            f"{repo_path} on the Hub (sha256 {hub_sha}) is not the file the "
            f"catalog pins (sha256 {pinned}): the repo changed; pin a revision "
            "or update the sha256 in your catalog"
        )
    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"
    if origin(meta.location) != origin(url):
        headers.pop("authorization", None)  # never send the token to a CDN
        headers.pop("Authorization", None)
    return RemoteFile(
        repo_path=repo_path,
        local=store.entry_paths(entry)[index],
        size=int(meta.size),
        url=meta.location,
        etag=etag,
        commit=meta.commit_hash,
        sha256=pinned or hub_sha,
        git_sha1=etag if not (pinned or hub_sha) and _HEX40.match(etag) else None,
        headers=headers,
    )
