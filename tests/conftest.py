"""Shared fixtures: composing the real configs under tmp_path, and the ../shared material."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `-n 2` (pyproject's addopts) runs two workers on CI's two cores: one torch thread each, and
    # one in each script a test starts (they inherit the variable), so that nothing oversubscribes
    # the cores. At 2 threads per process on a busy 2-core machine, a tiny step is ~5-10x slower.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# The longest test files first (seconds of both workers' time, measured on a loaded 2-core box),
# the rest after them in collection order. `--dist loadfile` hands a worker a whole file whenever
# it runs low; pyproject's `--no-loadscope-reorder` keeps this order, where xdist's default (most
# tests first) left the few-test, subprocess-heavy files (DDP, the NB201 benchmark) to the end,
# one worker running them while the other sat idle. Only the order changes: every test runs.
LONGEST_FIRST = (
    "test_fit_query.py",  # 129 s
    "test_reliability.py",  # 114
    "test_interrupt.py",  # 72
    "test_ddp.py",  # 60
    "test_configs.py",  # 57
    "test_export.py",  # 50
    "test_cli.py",  # 40
    "test_pipeline.py",  # 39
    "test_evaluate.py",  # 34
    "test_benchmark_nb201.py",  # 32
    "test_zeroshot.py",  # 29
    "test_ecosystem.py",  # 26
    "test_benchmark_ceiling.py",  # 25
    "test_predictor.py",  # 24
    "test_aggregate.py",  # 23
    "test_search_stage.py",  # 22
    "test_pipeline_zeroshot.py",  # 22
    "test_train.py",  # 17
    "test_benchmark_ranking.py",  # 17
    "test_benchmark_search.py",  # 15
    "test_segment.py",  # 13
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs the files of `LONGEST_FIRST` first, in its order (a stable sort: a file's tests stay
    together and in their order)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"
NB201_CSV = SHARED / "data" / "nb201_cifar10.csv"


def make_cfg(
    config_name: str, out: Path, overrides: list[str] | None = None, tiny: bool = True
) -> DictConfig:
    """Composes `conf/<config_name>.yaml` (with the tiny preset unless `tiny=False`), writing under
    `out`."""
    preset = ["debug=tiny"] if tiny else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=[*preset, *(overrides or [])])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.root_dir = str(ROOT)
    return cfg


@pytest.fixture
def nb201_csv() -> Path:
    if not NB201_CSV.is_file():
        pytest.skip(f"NB201 ground truth not found at {NB201_CSV} (../shared is absent)")
    return NB201_CSV


def run_until(
    script: str, args: list[str], ready: Callable[[], bool], timeout: float, **popen
) -> tuple[subprocess.Popen, float]:
    """Starts `python scripts/<script> args...` and waits until `ready()`, its end, or `timeout`;
    returns the process and the deadline."""
    cmd = [sys.executable, str(ROOT / "scripts" / script), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, **popen)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    return proc, deadline


def kill_when(
    script: str, args: list[str], ready: Callable[[], bool], timeout: float = 180
) -> None:
    """Runs `python scripts/<script> args...` and SIGKILLs it (and its children) once `ready()`."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc, _ = run_until(script, args, ready, timeout, start_new_session=True, **quiet)
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not finished, f"{script} ended before it could be killed: {proc.args}"


def signal_when(
    script: str,
    args: list[str],
    ready: Callable[[], bool],
    sig: int = signal.SIGINT,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Runs `python scripts/<script> args...`, sends `sig` to it (the process alone, as `kill`
    would) once `ready()`, and returns how it ended: exit code and captured output. With a
    `ready` that never holds, it simply runs the script to its end."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    proc, deadline = run_until(script, args, ready, timeout, **pipes)
    if proc.poll() is None and time.time() < deadline:
        proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def data_lines(path: Path) -> int:
    """Complete rows of a CSV written so far (0 when it does not exist yet)."""
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0
