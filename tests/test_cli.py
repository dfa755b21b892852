"""The installed package: every folder ships, the configs travel inside it (`pkg://nas_conf`), and
each console command runs from any folder with exit code 2 on bad input."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")


def sources(*tops: str) -> set[Path]:
    return {p for top in tops for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed() -> None:
    """A folder missing from `packages` would be missing from the wheel, silently."""
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    code = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("supernet", "predictor")
        for p in (ROOT / top).rglob("__init__.py")
    }
    conf = {
        ".".join(("nas_conf", *p.relative_to(ROOT / "conf").parts))
        for p in [ROOT / "conf", *(ROOT / "conf").rglob("*")]
        if p.is_dir() and p.name != "__pycache__"
    }
    assert code | conf == listed


def test_wheel_holds_every_config_and_command(tmp_path: Path) -> None:
    """Built from a copy of the sources: setuptools leaves a build/ folder where it builds, and a
    stale one would put deleted modules in the next wheel of the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("supernet", "predictor", "conf"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        n for n in names if n.endswith(".py") and n.split("/")[0] in ("supernet", "predictor")
    }
    assert modules == {str(p.relative_to(ROOT)) for p in sources("supernet", "predictor")}
    yamls = {f"nas_conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert yamls and yamls <= names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    for name, target in pyproject()["project"]["scripts"].items():
        assert f"{name} = {target}" in text
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


def command(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed beside {sys.executable} (pip install -e .)")
    return path


def test_command_runs_outside_the_checkout(tmp_path: Path) -> None:
    """From a folder with no conf/: the packaged configs compose, the output folder is named after
    the config, and a missing input is one line on stderr and exit code 2."""
    proc = subprocess.run(
        [str(command("nas-query")), f"table={tmp_path / 'nope.csv'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "nope.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["query"]


def test_script_and_command_compose_the_same_config(tmp_path: Path) -> None:
    """`python scripts/fit.py` in the checkout and `nas-fit` anywhere: one config."""
    args = ["--cfg", "job", "samples=x.csv", "predictor=ridge"]
    script = subprocess.run(
        [sys.executable, "scripts/fit.py", *args], cwd=ROOT, capture_output=True, text=True
    )
    installed = subprocess.run(
        [str(command("nas-fit")), *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert script.returncode == installed.returncode == 0, script.stderr + installed.stderr
    assert "samples: x.csv" in script.stdout
    assert script.stdout.replace(str(ROOT), "") == installed.stdout.replace(str(tmp_path), "")


def entry_points() -> dict[str, str]:
    """Each console command of `supernet.cli` / `predictor.cli`: name -> `module:attr`."""
    scripts = pyproject()["project"]["scripts"].items()
    return {n: t for n, t in scripts if t.split(":")[0] in ("supernet.cli", "predictor.cli")}


def test_every_command_names_a_stage_that_imports() -> None:
    """The stages are imported only when a command runs: a wrong path would show only then."""
    for name, target in entry_points().items():
        module, attr = target.split(":")
        stage = getattr(importlib.import_module(module), attr).stage
        assert isinstance(stage, str), name
        loaded = importlib.import_module(stage)
        assert callable(loaded.run) and callable(loaded.report), (name, stage)


def test_commands_import_no_stage_until_they_run() -> None:
    """Importing the entry points (what `nas-fit --help` does) imports no stage or benchmark, nor
    Lightning, torch_geometric or torch._dynamo: seconds per process otherwise."""
    code = (
        "import sys, predictor.cli, supernet.cli\n"
        "heavy = ('predictor.stages', 'predictor.benchmarks', 'supernet.stages', 'lightning',"
        " 'pytorch_lightning', 'torch_geometric', 'torch._dynamo')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]", proc.stdout


def test_command_takes_a_stage_module_or_its_path() -> None:
    from supernet import cli

    stage = importlib.import_module("supernet.stages.export")
    assert cli.load_stage(stage) is stage
    assert cli.load_stage("supernet.stages.export") is stage
    assert cli.command("export", stage).stage is stage


def test_bad_input_raised_inside_instantiate_exits_2(capsys) -> None:
    """Hydra wraps what a config object's constructor raises (a sampler's settings, its missing
    file): bad input is still exit 2 with the message, anything else still a traceback."""
    from types import SimpleNamespace

    from hydra.errors import InstantiationException
    from omegaconf import OmegaConf

    from supernet.cli import run_stage
    from supernet.utils import DataError

    def stage_raising(cause: Exception) -> SimpleNamespace:
        def run(cfg):
            raise InstantiationException("Error in call to target 'X'") from cause

        return SimpleNamespace(run=run, report=lambda cfg, r: None)

    cfg = OmegaConf.create({})
    for cause in (DataError("sampler.mix=1 must lie in [0, 1)"), FileNotFoundError("zs.csv")):
        with pytest.raises(SystemExit) as exit_:
            run_stage(stage_raising(cause), cfg)
        assert exit_.value.code == 2 and str(cause) in capsys.readouterr().err
    with pytest.raises(InstantiationException):
        run_stage(stage_raising(RuntimeError("a bug")), cfg)
