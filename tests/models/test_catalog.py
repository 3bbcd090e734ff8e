"""The built-in catalog and user catalogs: contents, merging, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

import r1chat
from r1chat.models.catalog import CatalogError, build, builtin_text, load_catalog, parse

DISTILLS = ["r1:1.5b", "r1:7b", "r1:8b", "r1:14b", "r1:32b", "r1:70b"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("R1CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("R1CHAT_CATALOG", raising=False)
    return tmp_path / "home"


def test_every_distill_in_every_common_quant() -> None:
    cat = load_catalog()
    for name in DISTILLS:
        bare = cat.require(name)
        assert bare.quant == "Q4_K_M" and bare.is_default and not bare.remote
        assert bare.repo and bare.files and bare.size > 0 and bare.layers and bare.context
        assert bare.params and bare.license
        for quant in ("q4_k_m", "q5_k_m", "q6_k", "q8_0"):
            e = cat.require(f"{name}-{quant}")
            assert e.quant == quant.upper() and e.model == name
            assert all(f.endswith(".gguf") and "/" not in f for f in e.files)
    assert cat.get("R1:7B-Q8_0") is cat.get("r1:7b-q8_0")  # names are case-insensitive


def test_known_sizes_and_kv_cache_per_token() -> None:
    cat = load_catalog()
    assert cat.require("r1:7b").size == 4_683_075_271
    assert cat.require("r1:14b").size == 8_988_112_040
    # 2 (K, V) x layers x kv_heads x head_dim x 2 bytes
    assert cat.require("r1:1.5b").kv_bytes_per_token == 2 * 28 * 2 * 128 * 2 == 28_672
    assert cat.require("r1:7b").kv_bytes_per_token == 57_344
    assert cat.require("r1:8b").kv_bytes_per_token == 131_072
    assert cat.require("r1:14b").kv_bytes_per_token == 196_608
    assert cat.require("r1:32b").kv_bytes_per_token == 262_144
    assert cat.require("r1:70b").kv_bytes_per_token == 327_680


def test_big_quants_are_split_and_the_full_r1_is_remote() -> None:
    cat = load_catalog()
    q8 = cat.require("r1:70b-q8_0")
    assert len(q8.files) == 2 and q8.subfolder
    assert q8.repo_paths[0] == f"{q8.subfolder}/{q8.files[0]}"
    full = cat.require("r1:671b")
    assert full.remote and not full.files and full.note


def test_listing_shows_each_bare_name_and_the_other_quants_once() -> None:
    names = [e.name for e in load_catalog().listed()]
    assert names[:4] == ["r1:1.5b", "r1:1.5b-q5_k_m", "r1:1.5b-q6_k", "r1:1.5b-q8_0"]
    assert "r1:7b-q4_k_m" not in names and "r1:7b" in names and "r1:671b" in names
    assert len(names) == len(set(names)) == 7 * 4 + 2  # + the two remote-only R1s
    assert "r1:671b-0528" in names


def test_the_package_ships_the_catalog() -> None:
    top = Path(r1chat.__file__).parent.parent / "models.toml"
    assert builtin_text() == top.read_text(encoding="utf-8")


def test_user_catalog_overrides_fields_and_adds_models(home: Path) -> None:
    sha = "ab" * 32
    (home / "config").mkdir(parents=True)
    (home / "config" / "models.toml").write_text(f"""
[models."r1:7b"]
revision = "0123abcd"
[models."r1:7b".quants.Q8_0]
sha256 = "{sha.upper()}"

[models."mine:3b"]
repo = "me/Mine-GGUF"
layers = 30
kv_heads = 2
head_dim = 64
context = 8192
[models."mine:3b".quants.Q6_K]
file = "Mine-Q6_K.gguf"
size = 2500000000
""")
    cat = load_catalog()
    q8 = cat.require("r1:7b-q8_0")
    assert q8.sha256 == (sha,) and q8.revision == "0123abcd"
    assert q8.files == ("DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf",)  # kept from the built-in
    assert q8.source.endswith("models.toml") and q8.source != "built-in catalog"
    mine = cat.require("mine:3b")
    assert mine.quant == "Q6_K" and mine.is_default and cat.require("mine:3b-q6_k")


def test_catalog_from_env_and_from_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[models."r1:7b"]\ntitle = "from env"\n')
    b.write_text('[models."r1:7b"]\ntitle = "from argument"\n')
    monkeypatch.setenv("R1CHAT_CATALOG", str(a))
    assert load_catalog().require("r1:7b").title == "from env"
    assert load_catalog(b).require("r1:7b").title == "from argument"
    with pytest.raises(CatalogError, match=r"catalog .*nope\.toml: no such file"):
        load_catalog(tmp_path / "nope.toml")


MODEL = """
[models."x:1b"]
repo = "me/X-GGUF"
layers = 2
kv_heads = 1
head_dim = 8
context = 512
"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[models."x:1b"\nrepo = 1', "bad TOML: "),
        (
            MODEL.replace('repo = "me/X-GGUF"\n', "") + '[models."x:1b".quants.Q4_K_M]\n'
            'file = "x.gguf"\nsize = 1\n',
            "entry 'x:1b': missing field 'repo'",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = -5\n',
            "entry 'x:1b' quant Q4_K_M: negative size -5",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = 0\n',
            "entry 'x:1b' quant Q4_K_M: size must be positive",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\n',
            "entry 'x:1b' quant Q4_K_M: missing field 'size'",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "sub/x.gguf"\nsize = 1\n',
            "file name 'sub/x.gguf' contains a path separator",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "../x.gguf"\nsize = 1\n',
            "file name '../x.gguf' contains a path separator",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "..gguf"\nsize = 1\n',
            "file name '..gguf' contains '..'",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "/etc/x.gguf"\nsize = 1\n',
            "file name '/etc/x.gguf' is an absolute path",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "C:\\\\x.gguf"\nsize = 1\n',
            "is an absolute path",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.bin"\nsize = 1\n',
            "does not end in .gguf",
        ),
        (
            MODEL
            + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = 1\nsubfolder = "../up"\n',
            "bad subfolder '../up'",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = 1\nsha256 = "abc"\n',
            "bad sha256 'abc'",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = "big"\n',
            "size must be an integer, not 'big'",
        ),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = true\n',
            "size must be an integer, not True",
        ),
        (MODEL + "sizee = 3\n", "entry 'x:1b': unknown field 'sizee'"),
        (MODEL.replace('"me/X-GGUF"', '"../etc"'), "bad repo id '../etc'"),
        (MODEL.replace("layers = 2", "layers = -2"), "layers must be positive, not -2"),
        (MODEL, "entry 'x:1b': no quantizations"),
        ('[models."Bad Name"]\nrepo = "a/b"\n', "entry 'Bad Name': bad name"),
        (
            MODEL + '[models."x:1b".quants.Q4_K_M]\nfiles = ["a.gguf", "b.gguf"]\nsize = 2\n'
            'sha256 = ["' + "a" * 64 + '"]\n',
            "1 sha256 for 2 files",
        ),
        (
            MODEL + 'default_quant = "Q8_0"\n[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\n'
            "size = 1\n",
            "default_quant Q8_0 is not among its quants",
        ),
    ],
)
def test_bad_catalogs_are_rejected_in_one_line(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"catalog {path}: ")
    assert reason in msg


def test_a_user_catalog_cannot_break_the_built_in_by_merging(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[models."r1:7b".quants.Q4_K_M]\nsize = -1\n')
    with pytest.raises(CatalogError, match=r"entry 'r1:7b' quant Q4_K_M: negative size -1"):
        load_catalog(path)


def test_build_without_user_file_is_the_builtin() -> None:
    cat = build([("built-in catalog", parse(builtin_text(), "built-in catalog"))])
    assert [e.name for e in cat.listed()] == [e.name for e in load_catalog().listed()]


def test_unknown_name_suggests_a_close_one() -> None:
    from r1chat.core.errors import R1ChatError

    with pytest.raises(R1ChatError, match=r"unknown model 'r1:7bb'; did you mean r1:7b\?"):
        load_catalog().require("r1:7bb")
