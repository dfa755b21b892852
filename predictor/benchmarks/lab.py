"""The supernet ranking lab: does a training recipe make the supernet rank? (`nas-bench-supernet`)

    nas-bench-supernet truth=nb201_cifar10.csv data.root=data/cifar10 'seeds=[0,1,2]' [LEVER=VALUE ...]
    nas-bench-supernet truth=... debug=tiny    # the protocol's plumbing in a minute, on digits

(`python scripts/benchmark_supernet.py ...` in a checkout.) A fixed protocol, so that each row of
an ablation table is one command with one lever changed (`supernet.net.share_convs=false`,
`sampler=fair`, `supernet.optimizer.lr=0.1`, `trainer.max_epochs=20`, `evaluator.calib_batches=8`,
...); an evaluation lever (`evaluator.bf16=true`, `evaluator.bn=batch`) can reuse an earlier
run's supernets with `lab.trained=<its output folder>`. Per seed it trains a supernet (the train
stage, with the protocol's budget: C=8, N=1, 90 bf16 epochs on CIFAR-10's training half at 16x16 by
default), then evaluates with inherited weights one fixed set of archs: `lab.num_archs` drawn
uniformly over the isomorphism classes with `lab.arch_seed` (the same for every seed and every lever, so rows are paired) plus the space's
reference archs. It scores the supernet's accuracies of those archs against the truth, and its
held-out losses (negated: lower is better) the same way, a second row (`SCORES`):
- Kendall and Spearman over every evaluated arch;
- Kendall over the live archs alone (a cell whose output is cut off computes nothing: every
  recipe tells those apart, so they inflate the whole-set figure);
- Kendall within the true top 10% of the evaluated archs (where a search looks);
- `dead_auc`: the chance that a live arch scores above a dead one (1 = every dead arch told apart);
- the reference archs' accuracies, and the train and evaluate stages' wall times.
Mean, std, min and max over seeds go to `benchmark_supernet.json` / `.md`. Only this module reads
the truth; the stages never do.

With `lab.features` (a whole-space zero-shot file, e.g. `nas-zeroshot archs=classes`'s), each seed's
subnets also go end to end: the rows of `nas-bench-ranking` that fit the GCN to them (-loss, as
`fit.py` does) and fuse it with the file's columns and live params (`E2E_ROWS`), scored over the
whole space, so a lever's verdict on the table is in the same command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from scipy.stats import kendalltau, spearmanr

from predictor.benchmarks import nb201
from predictor.benchmarks.common import (
    RANK_METRICS,
    TOP_FRACTION,
    mean_table,
    missing,
    read_column,
    read_truth,
    skipped,
    write_report,
)
from predictor.benchmarks.methods import make_signals, methods, run_draw
from predictor.benchmarks.nb201 import Stages, aggregate, decode_cifar10
from predictor.benchmarks.ranking import gcn_fitter
from predictor.io import read_features, read_target
from predictor.table import cost_columns
from supernet.classes import class_index, live_edges
from supernet.evaluator import choose_archs
from supernet.space import Arch, SearchSpace
from supernet.stages import evaluate, train
from supernet.utils import DataError, atomic_write_text

METRICS = ("kendall", "spearman", "kendall_live", "kendall_top10", "dead_auc")
# what ranks the evaluated archs: subnets.csv column -> sign (higher signed value ranks higher)
SCORES = {"acc": 1.0, "loss": -1.0}
# the whole-space rows of `nas-bench-ranking` that `lab.features` adds (the "every" rows need 2+
# zero-shot columns; the last is fit.py's default fusion, and the CPU preset's, when the file has
# both WRCor and MeCo)
E2E_ROWS = (
    "GCN ensemble",
    "fused: GCN + zero-shot + live params",
    "fused: GCN + every zero-shot + live params",
    "fused: GCN + every zero-shot",
)


def protocol_archs(space: SearchSpace, num_archs: int, seed: int) -> list[Arch]:
    """`num_archs` archs, one per isomorphism class with classes drawn uniformly (seeded), then the
    space's reference archs not already among them: the same list for every seed and recipe."""
    archs = choose_archs(space, "unique", num_archs, seed)
    refs = [a for a in space.default_reference_archs() if a not in archs]
    return archs + refs


def is_dead(space: SearchSpace, arch: Arch) -> bool:
    """Whether no op carries the cell's input to its output (the cell computes nothing)."""
    return not any(live_edges(space, arch))


def _tau(x: np.ndarray, y: np.ndarray, fn: Any = kendalltau) -> float:
    """A rank correlation, NaN when fewer than 3 pairs or a constant side leave it undefined."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(fn(x, y)[0])


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half; NaN without both kinds."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def score_supernet(
    acc: dict[str, float], truth: dict[str, float], space: SearchSpace
) -> dict[str, float]:
    """The protocol's metrics of one supernet's accuracies (arch string -> %) against the truth.

    Raises:
        ValueError: fewer than 3 evaluated archs are in the truth.
    """
    keys = [a for a in acc if a in truth]
    if len(keys) < 3:
        raise ValueError(f"only {len(keys)} evaluated archs are in the truth; need at least 3")
    s = np.array([acc[a] for a in keys])
    t = np.array([truth[a] for a in keys])
    dead = np.array([is_dead(space, space.parse(a)) for a in keys])
    top = t >= np.quantile(t, 1.0 - TOP_FRACTION)
    return {
        "n": len(keys),
        "n_dead": int(dead.sum()),
        "kendall": _tau(s, t),
        "spearman": _tau(s, t, spearmanr),
        "kendall_live": _tau(s[~dead], t[~dead]),
        "kendall_top10": _tau(s[top], t[top]),
        "dead_auc": auc(s[~dead], s[dead]),
    }


def one_seed(cfg: DictConfig, seed: int, out: Path, archs_csv: Path) -> dict[str, Any]:
    """Trains and evaluates one seed's supernet; returns its `subnets.csv` and stage wall times."""
    with open_dict(cfg):
        cfg.seed = seed
        cfg.paths.output_dir = str(out)
    stage = Stages(cfg, out)
    ckpt = trained_ckpt(cfg.lab.trained, seed) if cfg.lab.trained else None
    ckpt = ckpt or stage("train", train, "train", {})["ckpt_path"]
    chain = {"ckpt_path": ckpt, "evaluator": {**cfg.evaluator, "archs": str(archs_csv)}}
    chain["evaluator"]["num_archs"] = None  # every listed arch
    samples = stage("evaluate", evaluate, "evaluate", chain)["out"]
    return {"samples": samples, "times_s": stage.times}


def end_to_end_scorer(
    cfg: DictConfig, space: SearchSpace
) -> Callable[[str], dict[str, dict[str, float]]] | None:
    """With `lab.features`, `score(subnets_csv)`: each of `E2E_ROWS` fitted to every row of that
    file and scored over the whole space against the truth (`common.rank_metrics`); None without.
    The file is read here, before any training, so a bad one fails first."""
    lab = cfg.lab
    if not lab.get("features"):
        return None
    classes = class_index(space)
    names, values = read_features(lab.features, space, list(lab.feature_columns), classes)
    params = cost_columns(space, tuple(lab.input_shape), int(lab.num_classes))[:, 1]
    free = make_signals(space, params, dict(zip(names, values.T)))
    truth = read_truth(cfg.truth, space, cfg.truth_column)

    def score(samples: str) -> dict[str, dict[str, float]]:
        _, archs, y, _, _ = read_target(samples, space, "auto")
        idx = np.array([space.index(a) for a in archs])
        rows = {k: m for k, m in methods(gcn_fitter(cfg, space)).items() if k in E2E_ROWS}
        return run_draw(space, rows, idx, y, free, truth, classes)

    return score


def mean_std(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, list[float]]]:
    """Row -> metric -> [mean, std] over seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, metrics in per_seed[0].items():
        values = {k: np.array([p[name][k] for p in per_seed]) for k in metrics}
        out[name] = {k: [float(v.mean()), float(v.std())] for k, v in values.items()}
    return out


def trained_ckpt(folder: str, seed: int) -> str:
    """Seed `seed`'s supernet from an earlier lab run's output folder (an evaluation lever reuses
    the trained supernets instead of training again).

    Raises:
        DataError: the folder holds no such checkpoint.
    """
    ckpt = Path(folder) / f"seed_{seed}" / "train" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise DataError(
            f"lab.trained={folder}: no {ckpt}; expected the output folder of an earlier "
            f"nas-bench-supernet run that trained seed {seed}"
        )
    return str(ckpt)


def skip_reason(cfg: DictConfig) -> str | None:
    """Why the lab cannot run: no truth, or (on CIFAR-10) neither npz files nor a container."""
    return nb201.skip_reason(cfg) if cfg.data.name == "cifar10" else missing("truth", cfg.truth)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every seed's supernet, scored on the fixed arch set; writes JSON and markdown.

    Returns:
        the report, or `{"skipped": reason}` without a truth or data.
    """
    if skip := skipped(skip_reason(cfg)):
        return skip
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.data.name == "cifar10":
        decode_cifar10(Path(cfg.data.root), Path(cfg.container or ""))
    space = instantiate(cfg.space)
    e2e = end_to_end_scorer(cfg, space)  # reads its files now: a bad one fails before any work
    archs = protocol_archs(space, int(cfg.lab.num_archs), int(cfg.lab.arch_seed))
    archs_csv = out / "archs.csv"
    atomic_write_text(archs_csv, "arch\n" + "".join(space.to_str(a) + "\n" for a in archs))
    truth = read_column(cfg.truth, cfg.truth_column, space)
    refs = [space.to_str(a) for a in space.default_reference_archs()]
    t0 = time.perf_counter()
    per_seed, times, ref_acc, tables = [], [], [], []
    for seed in cfg.seeds:
        r = one_seed(cfg, int(seed), out / f"seed_{seed}", archs_csv)
        # canonical arch strings, as the truth's
        values = {c: read_column(r["samples"], c, space) for c in SCORES}
        signed = {c: {a: SCORES[c] * v for a, v in values[c].items()} for c in SCORES}
        per_seed.append({c: score_supernet(signed[c], truth, space) for c in SCORES})
        times.append(r["times_s"])
        ref_acc.append([values["acc"].get(a, float("nan")) for a in refs])
        if e2e:
            tables.append(e2e(r["samples"]))
    summaries = aggregate(per_seed)
    results = {
        "seeds": list(cfg.seeds),
        "archs": len(archs),
        "summary": summaries["acc"],  # by accuracy; `by_score` has every score's
        "per_seed": [p["acc"] for p in per_seed],
        "by_score": {
            c: {"summary": summaries[c], "per_seed": [p[c] for p in per_seed]} for c in SCORES
        },
        "reference_archs": refs,
        "reference_acc": ref_acc,
        "stage_times_s": times,
        "total_s": time.perf_counter() - t0,
    }
    if tables:
        results["end_to_end"] = {"summary": mean_std(tables), "per_seed": tables}
    config = OmegaConf.to_container(cfg, resolve=True)
    return write_report(
        out / "benchmark_supernet.json",
        results,
        config,
        markdown(results),
        out / "benchmark_supernet.md",
    )


def markdown(results: dict[str, Any]) -> str:
    """A row per score (accuracy, -loss): mean ± std of each metric over seeds, the reference
    archs' mean accuracy and the mean train / evaluate wall time."""
    refs = np.nanmean(np.array(results["reference_acc"], float), axis=0)
    refs_text = " / ".join(f"{r:.1f}" for r in refs)
    train_s = np.mean([t.get("train", 0.0) for t in results["stage_times_s"]])
    eval_s = np.mean([t["evaluate"] for t in results["stage_times_s"]])
    head = ("score", "seeds", "archs", *METRICS, "reference archs (%)", "train / evaluate (s)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for column, by in results["by_score"].items():
        m = by["summary"]
        cells = [f"{m[k][0]:.3f} ± {m[k][1]:.3f}" for k in METRICS]
        name = "accuracy" if column == "acc" else f"-{column}"
        lines.append(
            f"| {name} | {len(results['seeds'])} | {results['archs']} | "
            + " | ".join(cells)
            + f" | {refs_text} | {train_s:.0f} / {eval_s:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    if "end_to_end" in results:
        by_row = results["end_to_end"]["summary"]
        seeds = str(len(results["seeds"]))
        rows = [([name, seeds], m) for name, m in by_row.items()]
        text += "\n" + mean_table(("whole-space table", "seeds"), rows, RANK_METRICS)
    return text


def report(cfg: DictConfig, result: dict[str, Any]) -> None:
    """The table and the total time."""
    if "skipped" in result:
        return
    print(markdown(result))
    print(f"total {result['total_s']:.0f} s on {result['device']} ({result['cpu']})")
