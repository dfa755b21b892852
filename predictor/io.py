"""Reading and validating the stage files (samples, features, tables) and writing them atomically.

Samples: any CSV with columns `arch` and `acc` (others ignored). `acc` is accuracy in percent, a
finite number in [0, 100]; a file whose accuracies all lie in [0, 1], some strictly between, is
refused as fractions. An arch
listed more than once (re-evaluated with another seed, say) is averaged: one row per arch goes to the
fit, with the count kept. Every refusal is a `DataError` naming the file, the line and the value; the
rows and fields are read by `supernet.results` (`read_csv_rows`, `parse_arch`, `parse_number`), the
reader of the arch lists too.

Writers go to a temporary file in the target's folder and `os.replace` it, so a reader never sees
half a file and a failed run overwrites nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supernet.results import parse_arch, parse_number, read_csv_rows
from supernet.space import Arch, SearchSpace
from supernet.utils import DataError, file_sha256

# the lookup table's leading columns (predictor.table writes them; query reads them without
# importing the predictor's models)
TABLE_COLUMNS = ("rank", "arch", "score", "flops_M", "params_M", "acc", "count")


def read_samples(
    path: str | Path, space: SearchSpace, arch_column: str = "arch", acc_column: str = "acc"
) -> tuple[list[Arch], np.ndarray, np.ndarray]:
    """Measured accuracies, one entry per distinct arch (duplicates averaged), in file order.

    Returns:
        archs, acc `(n,)` percent, counts `(n,)` rows averaged into each entry.
    """
    path = Path(path)
    _, rows = read_csv_rows(path, [arch_column, acc_column])
    return _accuracy_means(path, rows, space, arch_column, acc_column)


def _column_means(
    path: Path,
    rows: list[tuple[int, dict[str, str]]],
    space: SearchSpace,
    arch_column: str,
    column: str,
    check: Callable[[float], str | None],
) -> tuple[list[Arch], np.ndarray, np.ndarray]:
    """`column`'s mean per distinct arch, in file order, and the rows each; `check(value)` says
    what is wrong with a value (None: nothing), and a DataError names the file, line and value."""
    values: dict[Arch, list[float]] = {}
    for line, row in rows:
        arch = parse_arch(path, line, row[arch_column], space, arch_column)
        value = parse_number(path, line, column, row[column])
        wrong = check(value)
        if wrong:
            raise DataError(f"{path}:{line}: {column}={row[column]!r} {wrong}")
        values.setdefault(arch, []).append(value)
    means = np.array([np.mean(v) for v in values.values()])
    return list(values), means, np.array([len(v) for v in values.values()])


def _accuracy_means(
    path: Path,
    rows: list[tuple[int, dict[str, str]]],
    space: SearchSpace,
    arch_column: str,
    acc_column: str,
) -> tuple[list[Arch], np.ndarray, np.ndarray]:
    """`_column_means` of accuracies in percent: each in [0, 100], and not all fractions."""
    archs, accs, counts = _column_means(
        path, rows, space, arch_column, acc_column,
        lambda a: None if 0.0 <= a <= 100.0 else "outside [0, 100] (accuracy in percent)",
    )  # fmt: skip
    if accs.max() <= 1.0 and ((accs > 0) & (accs < 1)).any():  # all 0 (or 1) stays ambiguous
        raise DataError(
            f"{path}:{rows[0][0]}: {acc_column}={rows[0][1][acc_column]!r}: every "
            "accuracy is in [0, 1]; expected percent in [0, 100] (multiply by 100)"
        )
    return archs, accs, counts


# what fit.py fits: `acc`, `loss` (fitted as -loss, so higher is better), or `auto`: the loss when
# the samples have a `loss` column (every subnets.csv does), else the accuracy
TARGETS = ("auto", "acc", "loss")


def read_target(
    path: str | Path, space: SearchSpace, target: str = "auto"
) -> tuple[str, list[Arch], np.ndarray, np.ndarray, np.ndarray | None]:
    """The fit's target per distinct arch (duplicates averaged), in file order; the file is read
    once.

    On the supernet lab's three CIFAR-10 supernets the held-out loss ranked their 304 archs at
    Kendall 0.545 +- 0.027 against the truth, the accuracy on the same images at 0.477 +- 0.083: the
    loss tells apart archs whose accuracies differ by less than a few images (BENCHMARKS.md).

    Returns:
        the target used (`acc` or `loss`), archs, y `(n,)` (higher is better: accuracy in percent
        or -loss), counts `(n,)` rows per arch, and the measured accuracy `(n,)` (None for a
        loss-only file).

    Raises:
        DataError: an unknown target, a missing column, or a value out of range (the accuracy as
            `read_samples`; a loss that is negative or not finite), naming file, line and value.
    """
    if target not in TARGETS:
        raise DataError(f"fit target={target!r}; expected one of {list(TARGETS)}")
    path = Path(path)
    header, rows = read_csv_rows(path, ["arch"] if target == "auto" else ["arch", target])
    if target == "auto":
        target = "loss" if "loss" in header else "acc"
        if target not in header:
            raise DataError(f"{path}:1: missing column(s) ['acc'] (or 'loss'); header is {header}")
    if target == "acc":
        archs, y, counts = _accuracy_means(path, rows, space, "arch", "acc")
        return "acc", archs, y, counts, y
    archs, loss, counts = _column_means(
        path, rows, space, "arch", "loss",
        lambda v: "is negative; expected a mean cross-entropy, >= 0" if v < 0 else None,
    )  # fmt: skip
    # the same rows in the same order: the archs line up with the loss's
    acc = _accuracy_means(path, rows, space, "arch", "acc")[1] if "acc" in header else None
    return "loss", archs, -loss, counts, acc


def read_features(
    path: str | Path,
    space: SearchSpace,
    columns: Sequence[str] | None = None,
    classes: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray]:
    """Per-arch numeric features (zero-shot scores, say) for every arch of the space.

    Args:
        columns: which columns to use; default every column but `arch` whose first value is
            numeric and that is not constant.
        classes: `(space.size,)` a class id per arch (`predictor.fusion.class_index`: archs that
            compute the same function). An arch without a row takes the mean of its class's rows,
            so one scored member per class is enough.

    Returns:
        names, values `(space.size, F)` in canonical index order (duplicate archs averaged).

    Shapes:
        values `(space.size, len(names))`.
    """
    path = Path(path)
    header, rows = read_csv_rows(path, ["arch", *(columns or [])])
    auto = columns is None
    if columns is None:
        columns = [c for c in header if c != "arch" and _is_number(rows[0][1][c])]
    if not columns:
        raise DataError(f"{path}:2: no numeric feature columns besides `arch`; header is {header}")
    sums = np.zeros((space.size, len(columns)))
    counts = np.zeros(space.size)
    for line, row in rows:
        i = space.index(parse_arch(path, line, row["arch"], space))
        sums[i] += [parse_number(path, line, c, row[c]) for c in columns]
        counts[i] += 1
    if classes is not None:  # every member takes its class's sums
        sums, counts = _class_sums(sums, classes), _class_sums(counts, classes)
    if (counts == 0).any():
        first = space.to_str(space.from_index(int(np.argmax(counts == 0))))
        raise DataError(
            f"{path}: features cover {int((counts > 0).sum())} of {space.size} archs; "
            f"every arch{' class' if classes is not None else ''} needs a row (first "
            f"missing: {first})"
        )
    values = sums / counts[:, None]
    if auto:  # a constant column (zeroshot.py's `seed`, say) tells the archs nothing
        keep = values.std(0) > 0
        columns, values = [c for c, k in zip(columns, keep) if k], values[:, keep]
        if not columns:
            raise DataError(f"{path}: every numeric column is constant; nothing to use")
    return list(columns), values


def _is_number(value: str | None) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _class_sums(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each row replaced by the sum over its class's rows.

    Shapes:
        values `(n, ...)`, classes `(n,)` ids in [0, n) -> `(n, ...)`.
    """
    sums = np.zeros_like(values)
    np.add.at(sums, classes, values)
    return sums[classes]


def read_table(
    path: str | Path, score_column: str = "score", numeric: Sequence[str] = ()
) -> tuple[list[str], dict[str, np.ndarray]]:
    """A lookup table: `arch` strings and numeric columns (`score_column` plus those of `numeric`
    that the file has).

    Returns:
        header, columns: `arch` as an object array, the others float arrays.
    """
    path = Path(path)
    header, rows = read_csv_rows(path, ["arch", score_column])
    if not path.read_bytes().endswith(b"\n"):  # our writers end every row; a copy was cut short
        raise DataError(
            f"{path}:{rows[-1][0]}: the last row has no line end: the file was cut off (copied "
            "or written partly); copy or write it again"
        )
    cols: dict[str, Any] = {"arch": np.array([r["arch"] for _, r in rows], dtype=object)}
    for c in dict.fromkeys([score_column, *[n for n in numeric if n in header]]):
        cols[c] = np.array([parse_number(path, line, c, r[c]) for line, r in rows])
    return header, cols


def check_writable(paths: Iterable[str | Path]) -> None:
    """Fails before any work when an output cannot be written: its folder cannot be made or
    written (a path under a file, say), or the path is a folder.

    Raises:
        DataError: naming the output and why.
    """
    for path in map(Path, paths):
        if path.is_dir():
            raise DataError(f"output {path} is a folder; expected a file path")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(
                f"output {path}: cannot make its folder {path.parent} ({err.strerror}); expected "
                "a path in a writable folder"
            ) from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise DataError(f"output {path}: folder {path.parent} is not writable")


FIT_RECORD = "fit.json"  # nas-fit's provenance record: removed before it writes, written last


def output_digest(path: str | Path) -> dict[str, str]:
    """What `fit.json` records of one output: its file name and sha256."""
    return {"file": Path(path).name, "sha256": file_sha256(path)}


def read_fit_record(path: str | Path) -> dict[str, Any] | None:
    """The `fit.json` beside `path` (a table or checkpoint of nas-fit), None when there is none.

    Raises:
        DataError: a record that is not a JSON object.
    """
    record_path = Path(path).parent / FIT_RECORD
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except ValueError as err:  # JSON or UTF-8 errors
        raise DataError(f"{record_path}: not a record of nas-fit ({err})") from None
    if not isinstance(record, dict):
        raise DataError(f"{record_path}: not a record of nas-fit (not a JSON object)")
    return record


def check_fit_record(
    path: str | Path, record: dict[str, Any] | None, role: str, required: bool
) -> None:
    """Refuses a fit output (`role`: `table` or `checkpoint`) that its `fit.json` (`record`, as
    `read_fit_record` reads it) does not vouch for. nas-fit removes that record before it writes
    anything and writes it last, with each output's digest: without it the fit stopped partway
    (refused when `required`), and a digest that differs means the file is not what that fit wrote
    (always refused). Records of older versions, without digests, are taken as they are.

    Raises:
        DataError: naming the file, the record and what to do.
    """
    path = Path(path)
    record_path = path.parent / FIT_RECORD
    if record is None:
        if required:
            raise DataError(
                f"{path}: no {FIT_RECORD} beside it, so the fit that wrote it did not finish "
                f"(rerun nas-fit) or the file was moved without it (copy {FIT_RECORD} along, or "
                "pass require_record=false)"
            )
        return
    digest = (record.get("outputs") or {}).get(role)
    if digest is None:
        return
    if digest.get("file") != path.name or digest.get("sha256") != file_sha256(path):
        raise DataError(
            f"{path}: not the {role} that {record_path} records ({digest.get('file')}, sha256 "
            f"{str(digest.get('sha256'))[:12]}...): changed after the fit, or written by another "
            "run; rerun nas-fit"
        )
