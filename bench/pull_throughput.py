"""Benchmark: `r1chat models pull` against `curl -o`, same file, same loopback server.

    .venv/bin/python bench/pull_throughput.py [--size-mb 200] [--runs 3] [--dir DIR]

Serves a random file of --size-mb MB from the test suite's loopback hub (its own process,
`tests/hub_server.py`, which answers like the Hugging Face Hub and sends file bodies with
sendfile), then downloads it alternately with curl and with r1chat (a fresh models
folder each time), and prints a table:

- curl: `curl -sL -o FILE URL` (follows the Hub's 302 to the "CDN", like r1chat does)
- r1chat (transfer): the time r1chat itself reports for the transfer (ranged GET,
  sha256 of every byte, fsync, atomic rename; not its start-up or the Hub's HEAD)
- r1chat (wall): the whole command, Python start-up and imports included

"vs curl" is the median over rounds of curl's time divided by r1chat's (both run back to
back in each round); "best" compares the fastest run of each.

Then the resume check: a pull is killed with SIGKILL part-way, the pull is run again,
and the Range the second pull asks for is compared with the bytes left on disk.
Writes go to --dir (default: a temp dir on the same disk as the models would be).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20  # r1chat.models.download.CHUNK


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n


class Server:
    def __init__(self, file: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "hub_server.py"), str(file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.endpoint = self.url.split("/test/repo/")[0]
        self.log: list[str] = []
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.strip())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def r1chat_env(home: Path, endpoint: str, catalog: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("R1CHAT_", "HF_"))}
    env.update(
        R1CHAT_HOME=str(home),
        HF_ENDPOINT=endpoint,
        HF_HOME=str(home / "hf"),
        R1CHAT_CATALOG=str(catalog),
        PYTHONPATH=str(ROOT),
    )
    return env


def run_curl(url: str, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["curl", "-sSfL", "-o", str(out), url], check=True)
    return time.perf_counter() - t0


def run_pull(env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, seconds r1chat reports for the transfer)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "r1chat", "models", "pull", "bench:big"],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"r1chat pull failed: {out.stderr.strip()}")
    m = re.search(r" in ([\d.]+) s,", out.stdout)  # "(200.0 MB in 0.31 s, ...)"
    return wall, float(m.group(1)) if m else wall


def resume_check(server: Server, work: Path, catalog: Path, size: int) -> tuple[int, int, int]:
    """Kill a pull part-way (SIGKILL), pull again: (bytes kept, Range start, re-downloaded)."""
    home = work / "resume-home"
    env = r1chat_env(home, server.endpoint, catalog)
    part = home / "data" / "models" / "test" / "repo" / "Big-Q4_K_M.gguf.part"
    for _ in range(5):
        shutil.rmtree(home, ignore_errors=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "r1chat", "models", "pull", "bench:big"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None:
            if part.exists() and part.stat().st_size >= size // 3:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.wait()
        if part.exists() and proc.returncode == -signal.SIGKILL:
            break
    else:
        raise SystemExit("could not interrupt a pull part-way (it finished first)")
    kept = part.stat().st_size
    before = len(server.log)
    run_pull(env)
    time.sleep(0.2)  # let the server's log catch up
    ranges = [ln.split()[-1] for ln in server.log[before:] if ln.startswith("GET ")]
    start = int(ranges[-1][len("bytes=") : -1]) if ranges and ranges[-1] != "-" else 0
    return kept, start, kept - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--dir", type=Path, default=None, help="where downloads are written")
    args = ap.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for the baseline")
    size = args.size_mb * 1_000_000
    with tempfile.TemporaryDirectory(prefix="r1chat-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        src = work / "src" / "Big-Q4_K_M.gguf"
        src.parent.mkdir()
        make_file(src, size)
        catalog = work / "catalog.toml"
        catalog.write_text(
            '[models."bench:big"]\nrepo = "test/repo"\nlayers = 1\nkv_heads = 1\n'
            'head_dim = 64\ncontext = 4096\n[models."bench:big".quants.Q4_K_M]\n'
            f'file = "Big-Q4_K_M.gguf"\nsize = {size}\n'
        )
        server = Server(src)
        try:
            curl_t, wall_t, xfer_t = [], [], []
            for i in range(args.runs):  # alternate who goes first: the page cache remembers

                def curl_once() -> None:
                    out = work / "curl.bin"
                    curl_t.append(run_curl(server.url, out))
                    assert out.stat().st_size == size
                    out.unlink()

                def pull_once(home: Path = work / f"home{i}") -> None:
                    wall, xfer = run_pull(r1chat_env(home, server.endpoint, catalog))
                    wall_t.append(wall)
                    xfer_t.append(xfer)
                    shutil.rmtree(home)

                for step in (curl_once, pull_once) if i % 2 == 0 else (pull_once, curl_once):
                    step()
            kept, start, again = resume_check(server, work, catalog, size)
        finally:
            server.stop()

    def mbps(ts: list[float]) -> float:
        return size / statistics.median(ts) / 1e6

    def paired(ts: list[float]) -> float:
        """Median over rounds of curl's time / ours (each round runs both back to back,
        so a busy moment on a shared machine hits both)."""
        return statistics.median(c / t for c, t in zip(curl_t, ts, strict=True))

    rows = [
        ("curl -o", curl_t, 1.0),
        ("r1chat pull (transfer)", xfer_t, paired(xfer_t)),
        ("r1chat pull (wall)", wall_t, paired(wall_t)),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"file: {size / 1e6:.0f} MB from a loopback hub, {args.runs} rounds, medians; "
        f"{os.cpu_count()} CPUs, load average {load:.1f}"
    )
    print()
    print(f"{'download':<24}{'seconds':>9}{'MB/s':>9}{'vs curl':>9}{'best':>9}")
    for name, ts, ratio in rows:
        best = min(curl_t) / min(ts)
        print(f"{name:<24}{statistics.median(ts):>9.3f}{mbps(ts):>9.0f}{ratio:>8.0%}{best:>8.0%}")
    print()
    print(
        f"resume after kill -9: {kept:,} bytes on disk, second pull asked for "
        f"bytes={start:,}-, re-downloaded {again:,} bytes (one buffer = {CHUNK:,})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
