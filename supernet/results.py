"""Append-only result files: one CSV row per architecture, flushed as soon as it is measured.

A rerun reads what is there, repairs a truncated last line (a run killed mid-write), refuses a file
written with other fixed settings (another checkpoint, say), and skips the keys already done.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supernet.utils import atomic_write_bytes


class ResultsCSV:
    """A resumable CSV of results keyed by one column.

    Args:
        path: the CSV file (created with a header if missing).
        columns: the header, in order; must include `key`.
        key: the column that identifies a row (`arch`).
        fixed: column -> value every row of this file must have (e.g. the checkpoint hash); a file
            whose rows disagree is refused rather than mixed.
    """

    def __init__(
        self,
        path: str | Path,
        columns: Iterable[str],
        key: str = "arch",
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self.path, self.columns, self.key = Path(path), list(columns), key
        self.fixed = {k: str(v) for k, v in (fixed or {}).items()}
        if key not in self.columns:
            raise ValueError(f"key column {key!r} is not among the columns {self.columns}")
        self.rows: dict[str, dict[str, str]] = {}
        self.repaired = False
        if self.path.is_file() and self.path.stat().st_size > 0:
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as f:
                f.write(",".join(self.columns) + "\n")

    def _load(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):  # killed mid-row: drop the partial line, it is redone
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(data))
            self.repaired = True
        reader = csv.DictReader(io.StringIO(data.decode()))
        if reader.fieldnames != self.columns:
            raise ValueError(
                f"{self.path}: header {reader.fieldnames} differs from the expected {self.columns}; "
                f"write to a new file instead"
            )
        for line, row in enumerate(reader, start=2):
            for col, want in self.fixed.items():
                if row[col] != want:
                    raise ValueError(
                        f"{self.path}, line {line}: {col}={row[col]!r} but this run has {col}={want!r}; "
                        f"results from different settings are not mixed: write to a new file"
                    )
            self.rows[row[self.key]] = row

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: dict[str, Any]) -> None:
        """Writes one row and flushes it to disk; a key already present is an error."""
        key = str(row[self.key])
        if key in self.rows:
            raise ValueError(f"{self.path}: {self.key}={key!r} is already recorded")
        full = {**self.fixed, **{k: v for k, v in row.items()}}
        missing = [c for c in self.columns if c not in full]
        if missing:
            raise ValueError(f"{self.path}: row for {key!r} lacks columns {missing}")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([full[c] for c in self.columns])
        with open(self.path, "a", newline="") as f:
            f.write(buf.getvalue())
            f.flush()  # in the OS's hands: survives SIGKILL of this process
        self.rows[key] = {c: str(full[c]) for c in self.columns}


def read_archs_csv(
    path: str | Path, space: Any, rank_by: str | None = None
) -> list[tuple[int, ...]]:
    """Archs listed in a CSV's `arch` column (a `subnets.csv` or a zero-shot table works), in file
    order, or best first by the numeric column `rank_by`. Errors name the file, line and value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"arch list {path} does not exist; expected a CSV with an arch column"
        )
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = ["arch"] + ([rank_by] if rank_by else [])
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        entries = []
        for line, row in enumerate(reader, start=2):
            try:
                arch = space.parse(row["arch"])
                value = float(row[rank_by]) if rank_by else 0.0
            except ValueError as err:
                raise ValueError(f"{path}, line {line}: {err}") from None
            if value != value:
                raise ValueError(f"{path}, line {line}: {rank_by} is NaN for {row['arch']!r}")
            entries.append((arch, value))
    if not entries:
        raise ValueError(f"{path}: no rows")
    if rank_by:
        entries.sort(key=lambda e: -e[1])
    seen: set[tuple[int, ...]] = set()
    return [a for a, _ in entries if not (a in seen or seen.add(a))]


def shard_path(out: str | Path, shard: int, num_shards: int) -> Path:
    """Where shard `shard` of `num_shards` writes its rows: beside `out`, named after it."""
    out = Path(out)
    if num_shards == 1:
        return out
    if not 0 <= shard < num_shards:
        raise ValueError(
            f"shard={shard} must lie in [0, {num_shards - 1}] for num_shards={num_shards}"
        )
    return out.with_name(f"{out.stem}.shard-{shard}-of-{num_shards}{out.suffix}")


def merge_shards(out: str | Path, num_shards: int, key: str = "arch") -> int:
    """Writes the union of the shard files of `out` to `out` (atomically) and returns its row count.

    A key that two shards both hold must have identical rows (it is then kept once); differing rows,
    headers or a missing shard are errors naming the files.
    """
    paths = [shard_path(out, k, num_shards) for k in range(num_shards)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"cannot merge {out}: shard file(s) {missing} are missing")
    header: list[str] | None = None
    rows: dict[str, tuple[Path, dict[str, str]]] = {}
    for path in paths:
        data = path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]  # a cut-off last row is not a result
        reader = csv.DictReader(io.StringIO(data.decode()))
        if header is None:
            header = list(reader.fieldnames or [])
        elif reader.fieldnames != header:
            raise ValueError(
                f"{path}: header {reader.fieldnames} differs from {paths[0]}'s {header}"
            )
        for row in reader:
            seen = rows.get(row[key])
            if seen is not None and seen[1] != row:
                raise ValueError(f"{key}={row[key]!r} differs between {seen[0]} and {path}")
            rows.setdefault(row[key], (path, row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(row for _, row in rows.values())
    atomic_write_bytes(out, buf.getvalue().encode())
    return len(rows)
