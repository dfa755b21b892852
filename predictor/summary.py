"""The one-screen summary of a pipeline run (`summary.md`): what each stage cost, how well the
supernet trained, how well the fit generalises, the answer and its plots, and plain warnings when the
answer should not be trusted (`predictor.topk.sanity_warnings`).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from predictor.topk import sanity_warnings
from supernet.progress import format_seconds

# the fit's held-out rank correlation, when scripts/fit.py reports one in its metrics
HELDOUT_TAU_KEYS = ("fit/heldout_tau", "heldout_tau")
_REF = re.compile(r"^val/acc/(\d+)$")


def read_last_metrics(path: str | Path) -> dict[str, float]:
    """The last logged value of every column of a Lightning `metrics.csv` (rows are sparse: each
    holds only what was logged at its step). Missing file: empty."""
    path = Path(path)
    if not path.is_file():
        return {}
    last: dict[str, float] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k and v not in (None, ""):
                    try:
                        last[k] = float(v)
                    except ValueError:
                        continue
    return last


def reference_accuracies(metrics: Mapping[str, Any]) -> dict[str, float]:
    """`val/acc/<i>` (the supernet's reference archs, percent) by index, from train metrics."""
    found = {int(m.group(1)): float(v) for k, v in metrics.items() if (m := _REF.match(k))}
    return {f"ref {i}": found[i] for i in sorted(found)}


def heldout_tau(fit_metrics: Mapping[str, Any]) -> float | None:
    """The fit's held-out Kendall tau, if the fit measured one."""
    for key in HELDOUT_TAU_KEYS:
        value = fit_metrics.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def _top_table(top: Sequence[Mapping[str, Any]], score_column: str) -> list[str]:
    """A fixed-width table in a code block: arch strings are full of `|`, which a markdown table
    would split."""
    cols = [
        ("arch", "arch"),
        (score_column, score_column),
        ("flops_M", "FLOPs_M"),
        ("params_M", "params_M"),
        ("class_size", "class"),
        ("live_conv", "live_conv"),
    ]
    cols = [(k, name) for k, name in cols if any(k in r for r in top)]

    def cell(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "NO"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [["#", *(name for _, name in cols)]]
    rows += [[str(i), *(cell(r.get(k, "")) for k, _ in cols)] for i, r in enumerate(top, 1)]
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    lines = ["```"]
    for row in rows:
        cells = [c.ljust(w) if j == 1 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines + ["```"]


def fusion_line(fit_metrics: Mapping[str, Any]) -> str:
    """What the table ranks by (empty when the fit did not fuse): the fused columns and the weight
    each got for agreeing with the others (`predictor.fusion.agreement`, squared). The
    prediction's weight 0 reads as a warning: the supernet added nothing to the answer."""
    trust, cols = fit_metrics.get("fit/trust"), fit_metrics.get("fit/vote_with")
    if not isinstance(trust, float) or not cols:
        return ""
    names = ", ".join(cols)
    if trust <= 0.0:
        return (
            f"the supernet's prediction disagrees with the free signals ({names}) and got weight "
            f"0: the table ranks by {names} alone, and the supernet added nothing to this answer"
        )
    rule = fit_metrics.get("fit/vote_rule", "softmin")
    weights = fit_metrics.get("fit/weights") or {}
    if any(weights.get(c, 1.0) != 1.0 for c in cols):  # every signal weighed by its agreement
        each = ", ".join(f"{c} {weights[c]:.2f}" for c in ["predicted", *cols])
        return (
            f"{rule} of the prediction and {names}, each weighed by its agreement, squared: {each}"
        )
    return f"{rule} of the prediction (weight {trust:.2f}: its agreement, squared) and {names}"


def _reference_lines(
    ref_acc: Mapping[str, float], num_classes: int, ref_archs: Sequence[str]
) -> list[str]:
    """The supernet's reference archs: their held-out accuracy against chance, and each arch."""
    accs = ", ".join(f"{k} {v:.1f}%" for k, v in ref_acc.items()) or "none logged"
    lines = [
        f"**Supernet reference archs**, held-out accuracy (chance {100.0 / num_classes:.0f}%): "
        f"{accs}"
    ]
    lines += [f"  - {name}: `{arch}`" for name, arch in zip(ref_acc, ref_archs)]
    return lines + [""]


def _fit_lines(fit_metrics: Mapping[str, Any], fusion: str) -> list[str]:
    """The fit's held-out (and training) Kendall tau, and what the table ranks by."""
    tau = heldout_tau(fit_metrics)
    held = (
        f"held-out Kendall tau **{tau:.3f}**"
        if tau is not None
        else "held-out Kendall tau: not measured (no finite `fit/heldout_tau` from the fit)"
    )
    train_tau = fit_metrics.get("fit/train_tau")
    train = f"; training-set tau {train_tau:.3f}" if isinstance(train_tau, float) else ""
    samples = fit_metrics.get("fit/samples", "?")
    target = {"acc": " (accuracy)", "loss": " (-loss)"}.get(fit_metrics.get("fit/target"), "")
    lines = [f"**Fit** on {samples} subnets{target}: {held}{train}", ""]
    return lines + ([f"**Table**: {fusion}", ""] if fusion else [])


def build_summary(
    output_dir: str | Path,
    stage_s: Mapping[str, float],
    ref_acc: Mapping[str, float] | None,
    num_classes: int,
    fit_metrics: Mapping[str, Any] | None,
    top: Sequence[Mapping[str, Any]],
    score_column: str = "score",
    plots: Sequence[str | Path] = (),
    ref_archs: Sequence[str] = (),
) -> tuple[str, list[str]]:
    """The summary as markdown, and the warnings it contains (also for the log).

    Args:
        stage_s: wall seconds per stage, in run order.
        ref_acc: `reference_accuracies` of the training run (None: no training in this run).
        fit_metrics: `fit.run`'s metrics (None: no fit in this run).
        top: the query's (or search's) top rows.
        ref_archs: arch strings of the reference archs, in index order (shown when given).
    """
    warnings = sanity_warnings(ref_acc, num_classes, top)
    fusion = fusion_line(fit_metrics or {})
    if fusion.startswith("the supernet's prediction"):
        warnings.append(fusion)
    lines = [f"# Run summary: {output_dir}", ""]
    if warnings:
        lines += ["## WARNING: do not trust this answer yet", ""]
        lines += [f"- {w}" for w in warnings] + [""]
    total = sum(stage_s.values())
    times = ", ".join(f"{s} {format_seconds(t)}" for s, t in stage_s.items())
    lines += [f"**Stages** ({format_seconds(total)} in all): {times}", ""]
    if ref_acc is not None:
        lines += _reference_lines(ref_acc, num_classes, ref_archs)
    if fit_metrics is not None:
        lines += _fit_lines(fit_metrics, fusion)
    if top:
        lines += ["**Top archs** (one per isomorphism class, its cheapest member):", ""]
        lines += _top_table(top, score_column) + [""]
    if plots:
        lines += ["**Plots**: " + ", ".join(f"`{Path(p).name}`" for p in plots), ""]
    return "\n".join(lines), warnings
