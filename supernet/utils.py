"""Small shared helpers: provenance of result files, atomic writes, safe checkpoint loading, and
`DataError`, the one error type for an input that cannot be used (entry points exit 2 on it)."""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import pickle
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch


class DataError(ValueError):
    """An input (file, setting) that cannot be used; the message names it, the bad value and what
    was expected. Entry points print it and exit 2."""


def load_checkpoint_file(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """`torch.load` with `weights_only=True`: tensors and plain data only, never code.

    Raises:
        DataError: no such file; a file that needs pickle to load (an old checkpoint, or a crafted
            one: refused, nothing in it runs); a corrupt, truncated or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise DataError(
            f"{what} {path} holds objects other than tensors and plain data, which would need "
            f"pickle (code from the file) to load; refused. Checkpoints of this version hold only "
            f"plain data: remake it with this version ({str(err).splitlines()[-1][:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, IndexError) as err:
        raise DataError(
            f"{what} {path} is not a complete checkpoint (corrupt, truncated or empty: "
            f"{type(err).__name__}: {str(err)[:120]})"
        ) from None
    if not isinstance(ckpt, dict):
        raise DataError(
            f"{what} {path} is not a complete checkpoint (holds a {type(ckpt).__name__}, "
            "expected a dict)"
        )
    return ckpt


def decode_utf8(data: bytes, path: str | Path, expected: str) -> str:
    """`data` as UTF-8 text; raises DataError naming `path:line` and the bytes that are not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: bytes {data[err.start : err.end]!r} are not UTF-8 text; expected "
            f"{expected}"
        ) from None


def check_count(name: str, value: Any, minimum: int = 1, meaning: str = "") -> int:
    """`value` as an int no smaller than `minimum`; else a DataError naming the setting, its value
    and what was expected (`meaning` says what a special value such as 0 means)."""
    try:
        number = int(value)
        ok = number == value or (isinstance(value, str) and str(number) == value.strip())
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(value, bool) or number < minimum:
        raise DataError(
            f"{name}={value!r}: expected an integer >= {minimum}"
            + (f" ({meaning})" if meaning else "")
        )
    return number


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when there is a GPU, else the CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 natively: a CUDA GPU with bf16, or a CPU with AVX512-BF16 or
    AMX tiles. Elsewhere bf16 autocast is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private
        return any(getattr(torch.cpu, p, lambda: False)() for p in probes)
    return False


def resolve_bf16(name: str, value: Any, device: torch.device) -> bool:
    """A bf16 setting (`true`, `false` or `auto`: `native_bf16(device)`) as a bool; anything else
    raises DataError naming the setting and its value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() == "auto":
        return native_bf16(device)
    raise DataError(
        f"{name}={value!r}: expected true, false or auto (bf16 where {device.type} computes it "
        "natively)"
    )


def git_hash() -> str:
    """Short commit of the working tree, with `+dirty` when it has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "-uno")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _umask() -> int:
    try:  # Linux: read it without setting it (os.umask is process-wide, threads would see 0)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


# A temporary file without this host's name and a writer's pid in its name (another host's on a
# shared filesystem, or an older naming) is only taken as a leftover once this old: no save of ours
# takes an hour.
STALE_TMP_S = 3600


def _writer_tag() -> str:
    """`<pid>-<host>`: who writes a temporary file, as its name records it."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname().split(".")[0]) or "host"
    return f"{os.getpid()}-{host}"


def clean_stale_tmp(path: str | Path) -> list[Path]:
    """Removes the leftovers of `atomic_write(path)` runs that were killed mid-write: temporary
    files `.<name>.<pid>-<host>.*.tmp` of this host whose process is gone (others once older than
    an hour)."""
    path = Path(path)
    here = _writer_tag().split("-", 1)[1]
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid, _, host = tmp.name[len(path.name) + 2 :].split(".", 1)[0].partition("-")
        try:
            if pid.isdigit() and host == here:
                stale = not _pid_alive(int(pid))
            else:
                stale = time.time() - tmp.stat().st_mtime > STALE_TMP_S
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # another process cleaned it first
            pass
    return removed


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Calls `write(tmp)` on a temporary file beside `path`, then renames it over `path`: readers
    see the old file or the new one, never half of one. The file gets the umask's mode (as `open`
    gives), not mkstemp's 0600, and the leftovers of killed earlier writes of `path` are removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp"
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_csv(
    path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Writes a CSV via a temporary file and `os.replace`."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)

    return atomic_write(path, write)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes text via a temporary file and `os.replace`."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def atomic_save(obj: Any, path: str | Path) -> Path:
    """`torch.save` via a temporary file and `os.replace`."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_savefig(fig: Any, path: str | Path) -> Path:
    """`matplotlib` figure to PNG via a temporary file and `os.replace`."""
    return atomic_write(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    )


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_run_info(
    output_dir: str | Path, stage: str, config: dict[str, Any], **extra: Any
) -> Path:
    """Writes `<stage>_run.json`: the resolved config, the git commit and anything in `extra`."""
    path = Path(output_dir) / f"{stage}_run.json"
    info = {"stage": stage, "git": git_hash(), "config": config, **extra}
    atomic_write_json(path, info)
    return path
