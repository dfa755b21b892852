"""Append-only result files: one CSV row per architecture, flushed as soon as it is measured; and
`read_csv_rows`, the one reader of input CSVs (arch lists here, samples, features and tables in
`predictor.io`), with `parse_arch` and `parse_number` for their fields.

A rerun reads what is there, refuses a file that is not its own (header first) or was written with
other fixed settings (another checkpoint, say), repairs a truncated last line (a run killed
mid-write), and skips the keys already done.
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from supernet.utils import DataError, atomic_write_bytes, decode_utf8


class ResultsCSV:
    """A resumable CSV of results keyed by one column.

    The file is locked (`flock`) while this object holds it: a second writer of the same file is
    refused, never interleaved (two evaluations would each redo and append every arch). The lock
    goes with the process, so a killed run leaves nothing to clean up. A file whose header is not
    this one's is refused and left untouched; only then is a cut-off last line repaired.

    Args:
        path: the CSV file (created with a header if missing).
        columns: the header, in order; must include `key`.
        key: the column that identifies a row (`arch`).
        fixed: column -> value every row of this file must have (e.g. the checkpoint hash); a file
            whose rows disagree is refused rather than mixed.

    Raises:
        DataError: the file is another kind of file, holds rows of other settings, is not UTF-8,
            is being written by another process, or cannot be created (`out=` under a file, say).
    """

    def __init__(
        self,
        path: str | Path,
        columns: Iterable[str],
        key: str = "arch",
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self._fd: int | None = None
        self.path, self.columns, self.key = Path(path), list(columns), key
        self.fixed = {k: str(v) for k, v in (fixed or {}).items()}
        if key not in self.columns:
            raise ValueError(f"key column {key!r} is not among the columns {self.columns}")
        self.rows: dict[str, dict[str, str]] = {}
        self.repaired = False
        self._fd = self._open_locked()
        try:
            data = self._read_all()
            if data:
                self._load(data)
            else:
                os.write(self._fd, (",".join(self.columns) + "\n").encode())
        except BaseException:
            self.close()
            raise

    def _open_locked(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as err:
            raise DataError(
                f"cannot write results file {self.path}: {err.strerror} (expected a file path in a "
                "writable folder)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DataError(
                f"{self.path} is being written by another process (it holds a lock on the file); "
                "wait for it to finish, or give this run another out= (shards: shard=K "
                "num_shards=N)"
            ) from None
        return fd

    def _read_all(self) -> bytes:
        chunks, offset = [], 0
        while chunk := os.pread(self._fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Releases the file (and its lock); the rows read so far stay readable."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ResultsCSV:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _load(self, data: bytes) -> None:
        # Our own file first: its first line must be exactly our header. Only then may a cut-off
        # last line be dropped; a foreign file is never modified.
        first = data.split(b"\n", 1)[0]
        header = ",".join(self.columns).encode()
        if first.rstrip(b"\r") != header or b"\n" not in data:
            shown = first[:200].decode("utf-8", "backslashreplace")
            raise DataError(
                f"{self.path}: not a results file of this run (first line {shown!r}, expected the "
                f"header {header.decode()!r}); left untouched: write to a new file instead"
            )
        if not data.endswith(b"\n"):  # killed mid-row: drop the partial line, it is redone
            data = data[: data.rfind(b"\n") + 1]
            os.ftruncate(self._fd, len(data))
            self.repaired = True
        text = decode_utf8(data, self.path, "a CSV written by this project")
        reader = csv.DictReader(io.StringIO(text))
        for line, row in enumerate(reader, start=2):
            for col, want in self.fixed.items():
                if row[col] != want:
                    raise DataError(
                        f"{self.path}, line {line}: {col}={row[col]!r} but this run has "
                        f"{col}={want!r}; results from different settings are not mixed: write "
                        "to a new file"
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
        if self._fd is None:
            raise ValueError(f"{self.path}: closed; open a new ResultsCSV to append")
        full = {**self.fixed, **{k: v for k, v in row.items()}}
        missing = [c for c in self.columns if c not in full]
        if missing:
            raise ValueError(f"{self.path}: row for {key!r} lacks columns {missing}")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([full[c] for c in self.columns])
        os.write(
            self._fd, buf.getvalue().encode()
        )  # one write, in the OS's hands: survives SIGKILL
        self.rows[key] = {c: str(full[c]) for c in self.columns}


def read_csv_rows(
    path: str | Path, required: Sequence[str], what: str = "a CSV"
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The one reader of input CSVs (arch lists, samples, features, tables): the header (names
    stripped of spaces) and `(line number, row)` pairs, lines counted in the file as an editor shows
    them. `what` says in errors what the file was expected to be.

    Raises:
        DataError: `path:line: ...` naming the value and what was expected, for a missing file, bytes
            that are not UTF-8, an empty file, a column named twice or missing, a row the csv module
            cannot read (a NUL byte, a field over its size limit), or no data rows.
    """
    path, need = Path(path), list(required)
    expected = f"{what} with column(s) {need}"
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected {expected}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror}); expected {expected}") from None
    reader = csv.DictReader(io.StringIO(decode_utf8(data, path, expected), newline=""))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise DataError(f"{path}:1: no header line (empty file); expected {expected}")
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:  # DictReader would silently keep the last of them
            raise DataError(
                f"{path}:1: column(s) {twice} appear more than once; header is {header}"
            )
        missing = [c for c in need if c not in header]
        if missing:
            raise DataError(f"{path}:1: missing column(s) {missing}; header is {header}")
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as err:  # a field over the csv module's size limit, say; DictReader's
        line = reader.reader.line_num  # own count lags one row behind on an error
        raise DataError(f"{path}:{line}: not a readable CSV row ({err})") from None
    if not rows:
        raise DataError(f"{path}: no data rows (a header only); expected {expected}")
    return header, rows


def _short_row(path: str | Path, line: int, column: str) -> DataError:
    return DataError(f"{path}:{line}: no {column} value: the row has fewer fields than the header")


def parse_arch(
    path: str | Path, line: int, value: str | None, space: Any, column: str = "arch"
) -> tuple[int, ...]:
    """`value` (field `column` of `path`'s row at `line`) parsed by `space`; a DataError naming
    the file, line and value otherwise."""
    if value is None:
        raise _short_row(path, line, column)
    try:
        return space.parse(value)
    except (ValueError, TypeError, AttributeError) as err:
        raise DataError(f"{path}:{line}: bad arch {value!r}: {err}") from None


def parse_number(
    path: str | Path, line: int, column: str, value: str | None, finite: bool = True
) -> float:
    """`value` (field `column` of `path`'s row at `line`) as a float: finite, or with
    `finite=False` anything but NaN (a score may be +-inf); a DataError naming the file, line,
    column and value otherwise."""
    if value is None:
        raise _short_row(path, line, column)
    try:
        x = float(value)
    except ValueError:
        raise DataError(f"{path}:{line}: {column}={value!r} is not a number") from None
    if x != x and not finite:
        raise DataError(f"{path}:{line}: {column}={value!r} is NaN; expected a number")
    if finite and not math.isfinite(x):
        raise DataError(
            f"{path}:{line}: {column}={value!r} is not finite; expected a finite number"
        )
    return x


def read_archs_csv(
    path: str | Path, space: Any, rank_by: str | None = None
) -> list[tuple[int, ...]]:
    """Archs listed in a CSV's `arch` column (a `subnets.csv` or a zero-shot table works), in file
    order, or best first by the numeric column `rank_by` (NaN refused), each arch once. Errors name
    the file, line and value (`read_csv_rows`)."""
    path = Path(path)
    need = ["arch", *([rank_by] if rank_by else [])]
    _, rows = read_csv_rows(path, need, "an arch list (a CSV)")
    entries = [
        (
            parse_arch(path, line, row["arch"], space),
            parse_number(path, line, rank_by, row[rank_by], finite=False) if rank_by else 0.0,
        )
        for line, row in rows
    ]
    if rank_by:
        entries.sort(key=lambda e: -e[1])
    seen: set[tuple[int, ...]] = set()
    return [a for a, _ in entries if not (a in seen or seen.add(a))]


def read_ranked_scores(
    path: str | Path, space: Any, column: str
) -> tuple[list[tuple[int, ...]], list[float]]:
    """A scores file's archs best first by `column` (`read_archs_csv`), and the normal score of
    each one's rank: the standard normal quantile at (n - r - 0.5) / n for rank r, so the scale
    of the column drops out and its order stays. A file with no row is refused (DataError)."""
    archs = read_archs_csv(path, space, rank_by=column)
    normal, n = statistics.NormalDist(), len(archs)
    return archs, [normal.inv_cdf(1.0 - (r + 0.5) / n) for r in range(n)]


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
