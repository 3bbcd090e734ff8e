"""Any GGUF repo on the Hub, by name: `models search`, `models pull OWNER/REPO[:QUANT]`
and what follows (`models`, `-m`, `path`, `info`, `rm`), as subprocesses against the
loopback Hub through the real huggingface_hub client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli_models import one_error_line, part_of, r1
from tests.fixtures.hub_server import FakeHub, make_gguf_bytes
from tests.fixtures.scripted import ScriptedModel

QWEN3 = "bartowski/deepseek-ai_DeepSeek-R1-0528-Qwen3-8B-GGUF"
Q3 = "deepseek-ai_DeepSeek-R1-0528-Qwen3-8B"
UNSLOTH = "unsloth/DeepSeek-R1-Distill-Qwen-7B-GGUF"
SPLIT = [f"Q8_0/DeepSeek-R1-Distill-Qwen-7B-Q8_0-0000{i}-of-00002.gguf" for i in (1, 2)]


@pytest.fixture
def repos(hub: FakeHub) -> FakeHub:
    for quant, size in (("Q2_K", 1_000_000), ("Q4_K_M", 2_000_000), ("Q8_0", 3_000_000)):
        hub.add(QWEN3, f"{Q3}-{quant}.gguf", make_gguf_bytes(size, seed=size))
    hub.add(QWEN3, "README.md", b"# quants\n", lfs=False)
    hub.add(QWEN3, "mmproj-F16.gguf", make_gguf_bytes(1000))  # not a model
    hub.describe(QWEN3, downloads=5_000, arch="qwen3", params=8_190_735_360)
    hub.add(UNSLOTH, "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", make_gguf_bytes(1_500_000))
    for i, path in enumerate(SPLIT):
        hub.add(UNSLOTH, path, make_gguf_bytes(1_200_000, seed=i + 10))
    hub.describe(UNSLOTH, downloads=9_000, params=7_615_616_512)
    hub.add("someone/DeepSeek-R1-notes", "README.md", b"no weights", lfs=False)
    return hub


def models_dir(env: dict[str, str]) -> Path:
    return Path(env["R1CHAT_HOME"]) / "data" / "models"


def test_search_lists_repos_quants_sizes_and_fit(env: dict[str, str], repos: FakeHub) -> None:
    out = r1(env, "models", "search", "deepseek", "r1", "--json", "--ctx", "4096")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [r["repo"] for r in data["repos"]] == [UNSLOTH, QWEN3]  # most downloaded first
    qwen3 = data["repos"][1]
    assert [q["quant"] for q in qwen3["quants"]] == ["Q2_K", "Q4_K_M", "Q8_0"]
    assert [q["size"] for q in qwen3["quants"]] == [1_000_000, 2_000_000, 3_000_000]
    assert qwen3["quants"][1]["name"] == f"{QWEN3}:Q4_K_M"
    assert qwen3["quants"][1]["fit"]["short"] == "CPU" and qwen3["arch"] == "qwen3"
    split = next(q for q in data["repos"][0]["quants"] if q["quant"] == "Q8_0")
    assert split["files"] == SPLIT and split["size"] == 2_400_000
    # one call for the list, one per repo: not one per file
    api = [r.path for r in repos.api_requests() if r.path.startswith("/api/models")]
    assert sorted(api) == ["/api/models", f"/api/models/{QWEN3}", f"/api/models/{UNSLOTH}"]
    text = r1(env, "models", "search", "qwen3").stdout
    assert QWEN3 in text and "Q4_K_M 2.0 MB CPU" in text and UNSLOTH not in text


def test_pull_by_repo_and_quant_then_use_it_everywhere(
    env: dict[str, str],
    repos: FakeHub,
) -> None:
    name = f"hf.co/{QWEN3}:q4_k_m"
    out = r1(env, "models", "pull", name)
    assert out.returncode == 0, out.stderr
    path = models_dir(env) / QWEN3 / f"{Q3}-Q4_K_M.gguf"
    assert path.stat().st_size == 2_000_000 and "sha256 verified" in out.stdout
    key = f"{QWEN3.lower()}:q4_k_m"
    assert r1(env, "models", "path", f"{QWEN3}:Q4_K_M").stdout.strip() == str(path)
    listed = json.loads(r1(env, "models", "--json").stdout)["models"]
    row = next(m for m in listed if m["name"] == QWEN3.lower())  # its bare name: the one quant
    assert row["installed"] and row["quant"] == "Q4_K_M"
    assert "installed" in r1(env, "models", "info", key).stdout
    assert r1(env, "models", "default", key).returncode == 0
    assert r1(env, "models", "default").stdout.strip().endswith(key)
    again = r1(env, "models", "pull", key)
    assert "already installed" in again.stdout
    gone = r1(env, "models", "rm", key, "--yes")
    assert gone.returncode == 0 and not path.exists(), gone.stderr
    names = [m["name"] for m in json.loads(r1(env, "models", "--json").stdout)["models"]]
    assert not any(n.startswith(QWEN3.lower()) for n in names)  # forgotten, with its files


def test_pull_resumes_after_a_drop(env: dict[str, str], repos: FakeHub) -> None:
    file = f"{Q3}-Q8_0.gguf"
    repos.drop_after(file, 1_000_000)
    out = r1(env, "models", "pull", f"{QWEN3}:Q8_0", seams=("--retries", "-1"))
    assert out.returncode == 1 and "to resume" in one_error_line(out.stderr)
    kept = part_of(models_dir(env) / QWEN3 / file).stat().st_size
    out = r1(env, "models", "pull", f"{QWEN3}:Q8_0")
    assert out.returncode == 0, out.stderr
    assert repos.gets(file)[-1].range == f"bytes={kept}-" and "resumed after" in out.stdout


def test_a_repo_without_a_quant_gets_the_one_that_fits_best(
    env: dict[str, str],
    repos: FakeHub,
) -> None:
    out = r1(env, "models", "pull", QWEN3)
    assert out.returncode == 0, out.stderr
    assert f"{QWEN3}: Q4_K_M: CPU only (of 3 that fit)" in out.stderr  # several fit: Q4_K_M
    assert (models_dir(env) / QWEN3 / f"{Q3}-Q4_K_M.gguf").is_file()
    again = r1(env, "models", "pull", QWEN3)  # now a name it knows: that quant again
    assert "already installed" in again.stdout
    tight = r1(env, "models", "pull", UNSLOTH, "--ctx", "131072", seams=("--ram-gib", "1"))
    assert tight.returncode == 1
    line = one_error_line(tight.stderr)
    assert line.startswith(f"error: no quantization of {UNSLOTH} fits this machine")
    assert line.endswith(f"name one to pull it anyway: {UNSLOTH}:Q4_K_M")


def test_a_split_gguf_in_a_quant_folder_is_one_model(
    env: dict[str, str],
    repos: FakeHub,
) -> None:
    out = r1(env, "models", "pull", f"{UNSLOTH}:Q8_0")
    assert out.returncode == 0, out.stderr
    folder = models_dir(env) / UNSLOTH
    assert sorted(p.name for p in folder.glob("*.gguf")) == [Path(p).name for p in SPLIT]
    first = r1(env, "models", "path", f"{UNSLOTH}:q8_0").stdout.strip()
    assert first == str(folder / Path(SPLIT[0]).name)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            "bartowski/DeepSeek-R1-0528-Qwen3-8B-GGUF",
            f"not found on the Hub; did you mean {QWEN3}?",
        ),
        ("someone/DeepSeek-R1-notes", "has no GGUF files"),
        (f"{QWEN3}:Q5_K_M", "has no Q5_K_M; it has: Q2_K, Q4_K_M, Q8_0"),
        ("acme/Gated-R1-GGUF:Q4_K_M", "is gated: accept its terms"),
    ],
)
def test_pull_errors_are_one_line(
    env: dict[str, str],
    repos: FakeHub,
    spec: str,
    says: str,
) -> None:
    repos.add("acme/Gated-R1-GGUF", "Gated-R1-Q4_K_M.gguf", make_gguf_bytes(1000))
    repos.gate("acme/Gated-R1-GGUF", "hf_right")
    out = r1(env, "models", "pull", spec)
    assert out.returncode == 1
    assert says in one_error_line(out.stderr)
    assert not (models_dir(env) / "hub.json").exists()  # nothing recorded


def test_offline_search_fails_in_one_line_and_models_still_lists(
    env: dict[str, str],
    repos: FakeHub,
) -> None:
    assert r1(env, "models", "pull", f"{QWEN3}:Q2_K").returncode == 0
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    out = r1(offline, "models", "search")
    assert out.returncode == 1 and "HF_HUB_OFFLINE" in one_error_line(out.stderr)
    listed = r1(offline, "models")
    assert listed.returncode == 0 and QWEN3.lower() in listed.stdout


def test_a_pulled_hub_model_runs_and_its_shape_is_read_from_its_header(
    env: dict[str, str],
    hub: FakeHub,
    answer_model: ScriptedModel,
) -> None:
    repo = "tester/Scripted-R1-GGUF"
    hub.add(repo, "Scripted-R1-Q4_K_M.gguf", answer_model.path.read_bytes())
    assert r1(env, "models", "pull", f"{repo}:Q4_K_M").returncode == 0
    table = json.loads((models_dir(env) / "hub.json").read_text())[repo.lower()]
    assert table["estimated"] is False and table["layers"] == 1  # the scripted model's
    out = r1(env, "ask", "-m", f"{repo}:Q4_K_M", "--threads", "1", "--no-log", "What is 2+2?")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == answer_model.answer.strip()


def test_info_says_how_prompts_are_built(
    env: dict[str, str], hub: FakeHub, answer_model: ScriptedModel, smollm2_path: Path
) -> None:
    hub.add("tester/Scripted-R1-GGUF", "Scripted-R1-Q4_K_M.gguf", answer_model.path.read_bytes())
    hub.add("tester/SmolLM2-GGUF", "SmolLM2-135M-Instruct-Q4_1.gguf", smollm2_path.read_bytes())
    for name in ("tester/Scripted-R1-GGUF:Q4_K_M", "tester/SmolLM2-GGUF:Q4_1"):
        assert r1(env, "models", "pull", name).returncode == 0
    r1_info = json.loads(r1(env, "models", "info", "tester/scripted-r1-gguf", "--json").stdout)
    assert r1_info["prompt_format"].startswith("R1") and r1_info["hub"]
    assert not r1_info["shape_estimated"]
    smol = r1(env, "models", "info", "tester/smollm2-gguf:q4_1").stdout
    assert "prompts      its own chat template" in smol


def test_an_unreachable_hub_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tier: the network error huggingface_hub gives up with (after its own retries,
    which take ~20 s against a closed port) becomes one line, not a traceback."""
    import httpx2
    from huggingface_hub import HfApi

    from r1chat.core.errors import R1ChatError
    from r1chat.models import hub_repos

    def down(*args: object, **kw: object) -> object:
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "list_models", down)
    monkeypatch.setattr(HfApi, "model_info", down)
    with pytest.raises(R1ChatError, match=r"^cannot search the Hub: name or service not known$"):
        hub_repos.search("DeepSeek-R1")
    with pytest.raises(R1ChatError, match="cannot look up a/b on the Hub"):
        hub_repos.repo_files("a/b")
