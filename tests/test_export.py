"""A searched arch as a plain network: only its ops, the supernet path's function given the same
weights and BN statistics, files loadable with no config, and self-describing best_arch.json."""

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from supernet import build_network
from supernet.artefact import arch_record, write_arch_record
from supernet.chain_model import ChainSuperNet
from supernet.chain_space import ChainSpace
from supernet.classes import prune_dead
from supernet.evaluator import SubnetEvaluator
from supernet.export import (
    load_network,
    network_from_checkpoint,
    network_from_supernet,
    recalibrate_bn,
)
from supernet.model import SuperNet
from supernet.module import net_meta
from supernet.space import NB201Space
from supernet.stages import export, retrain
from supernet.utils import DataError
from tests.conftest import ROOT, make_cfg

NB201 = NB201Space(C=4, N=1)
CHAIN = ChainSpace(
    widths=[8, 16], layers=[2, 2], strides=[1, 2], stem_channels=8, head_channels=32
)
# node 2 reaches node 3 only through a none: its two edges are dead, and the cell's 1x1 and 3x3
# both come from one shared weight
DEAD_END = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
)
# a conv reading a zero node (node 1 has no live input): zero in the supernet's default BN only
ZERO_SOURCE = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


def randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every weight and BN statistic away from its initial value, so that a copy that misses one
    (or takes the wrong slice) shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                r = torch.rand(t.shape, generator=g)
                t.copy_(0.5 + r if name.endswith("running_var") else (r - 0.5) * 0.8)
    return net.eval()


def supernets(affine: bool, track: bool) -> list:
    kw = {"num_classes": 10, "in_channels": 1, "affine": affine, "track_running_stats": track}
    return [
        ("nb201_shared", randomise(SuperNet(NB201, share_convs=True, **kw))),
        ("nb201_separate", randomise(SuperNet(NB201, **kw))),
        ("nb201_shared_bn", randomise(SuperNet(NB201, share_convs=True, share_bn=True, **kw))),
        ("chain_tiny", randomise(ChainSuperNet(CHAIN, **kw))),
    ]


def archs_of(space, n: int = 6, zero_sources: bool = True) -> list:
    """Random archs, and for NB201 the two above; `zero_sources=False` leaves out the archs with
    an op that reads a zero node (see `supernet.network`)."""
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(n)]
    if space.name != "nb201":
        return archs
    archs += [space.parse(DEAD_END), space.parse(ZERO_SOURCE)]
    return archs if zero_sources else [a for a in archs if not reads_zero(space, a)]


def reads_zero(space: NB201Space, arch) -> bool:
    none, fed = space.ops.index("none"), {0}
    for a, (to, src) in zip(arch, space.edges):  # sources come before their targets
        if a != none and src in fed:
            fed.add(to)
    return any(a != none and src not in fed for a, (_, src) in zip(arch, space.edges))


def test_network_holds_only_the_live_ops():
    arch = NB201.parse(DEAD_END)
    net = build_network("nb201", DEAD_END, 10, 1, {"C": 4, "N": 1})
    keys = {k.split(".")[3] for k in net.state_dict() if ".edges." in k}
    assert keys == {"1_0", "3_1"}  # the dead-end node's conv 2<-0 is gone; pool and skip hold none
    n = sum(p.numel() for p in net.parameters())
    assert n == round(NB201.cost(prune_dead(NB201, arch), (1, 8, 8), 10).params_M * 1e6)
    assert n < round(NB201.cost(arch, (1, 8, 8), 10).params_M * 1e6)
    chain_arch = CHAIN.parse("ir_k3_e3|ir_k7_e6|ir_k5_e3|skip")
    chain = build_network(CHAIN, chain_arch, 10, 1)
    assert sum(p.numel() for p in chain.parameters()) == round(
        CHAIN.cost(chain_arch, (1, 8, 8), 10).params_M * 1e6
    )
    assert chain(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match="malformed arch string"):
        build_network("nb201", "ir_k3_e3|skip", 10)


@pytest.mark.parametrize("name, supernet", supernets(affine=True, track=True))
def test_inherited_weights_and_statistics_compute_the_supernet_path(name, supernet):
    x = torch.randn(5, 1, 8, 8)
    for arch in archs_of(supernet.space, zero_sources=False):
        net = network_from_supernet(supernet, arch, bn="inherit")
        with torch.no_grad():
            torch.testing.assert_close(net(x), supernet(x, arch), rtol=1e-5, atol=1e-6)
    other = network_from_supernet(supernet, archs_of(supernet.space)[0], bn="inherit")
    with torch.no_grad():
        assert not torch.allclose(other(x), supernet(x, arch), atol=1e-3)


@pytest.mark.parametrize("name, supernet", supernets(affine=False, track=False))
def test_batch_statistics_and_recalibration_compute_the_supernet_path(name, supernet):
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    calib = [(torch.randn(16, 1, 8, 8), None) for _ in range(3)]
    for arch in archs_of(supernet.space):
        net = network_from_supernet(supernet, arch, bn="batch")
        assert not net.stem[1].track_running_stats
        with torch.no_grad():
            torch.testing.assert_close(net(x), supernet(x, arch), rtol=1e-5, atol=1e-6)
        # recalibrated on the same batches: the loss the project's evaluator measures
        net = network_from_supernet(supernet, arch, "recalibrate", calib, calib_batches=3)
        evaluator = SubnetEvaluator(supernet, [(x, y)], "recalibrate", calib, calib_batches=3)
        with torch.no_grad():
            loss = F.cross_entropy(net(x), y).item()
        assert loss == pytest.approx(evaluator.evaluate(arch).loss, rel=1e-5, abs=1e-6)


def test_recalibration_estimates_the_statistics():
    net = build_network(NB201, DEAD_END, 10, 1)
    x = torch.randn(8, 1, 8, 8) + 3
    assert recalibrate_bn(net, [(x, None)] * 5, 2) == 2
    assert not net.training and net.stem[1].momentum == 0.1
    with torch.no_grad():
        h = net.stem[0](x)
    bn = net.stem[1]
    assert bn.num_batches_tracked == 2
    torch.testing.assert_close(bn.running_mean, h.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, h.transpose(0, 1).flatten(1).var(dim=1))


def save_supernet_ckpt(path: Path, supernet) -> Path:
    """What `load_supernet` reads of a Lightning checkpoint of `SupernetModule`."""
    state = {f"net.{k}": v for k, v in supernet.state_dict().items()}
    torch.save({"state_dict": state, "nas": {"meta": net_meta(supernet)}, "epoch": 3}, path)
    return path


def test_weights_from_a_checkpoint(tmp_path):
    supernet = randomise(ChainSuperNet(CHAIN, 10, 1, True, True))
    ckpt = save_supernet_ckpt(tmp_path / "last.ckpt", supernet)
    arch = CHAIN.parse("ir_k5_e3|ir_k3_e6|ir_k7_e3|skip")
    net, record = network_from_checkpoint(ckpt, arch, CHAIN, bn="inherit")
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), supernet(x, arch), rtol=1e-5, atol=1e-6)
    assert record["epoch"] == 3
    with pytest.raises(
        DataError, match=r"a supernet of space chain .* the arch is of space nb201"
    ):
        network_from_checkpoint(ckpt, DEAD_END, NB201)


def test_export_script_inherits_and_recalibrates(tmp_path):
    """scripts/export.py with a checkpoint: the space is the checkpoint's (no space= given), the
    weights its path's, the BN statistics estimated on calib_batches training batches."""
    supernet = randomise(SuperNet(NB201, 10, 1, share_convs=True))  # default BN: none kept
    ckpt = save_supernet_ckpt(tmp_path / "last.ckpt", supernet)
    cfg = make_cfg(
        "export",
        tmp_path / "out",
        [f"arch='{DEAD_END}'", f"ckpt_path={ckpt}", "space=nb201", "calib_batches=2"],
    )
    with pytest.raises(DataError, match=r"a supernet of space nb201 \{'C': 4, 'N': 1\}.*'C': 16"):
        export.run(cfg, overrides=["space=nb201"])  # an explicit space that is not the ckpt's
    out = export.run(cfg, overrides=[])
    assert out["spec"]["space_config"] == {"C": 4, "N": 1} and out["source"]["bn"] == "recalibrate"
    state = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    shared = supernet.blocks[0].convs[4].conv.weight  # edge 3<-1, a 1x1: the centre of its 3x3
    assert torch.equal(state["blocks.0.edges.3_1.1.weight"], shared[:, :, 1:2, 1:2])
    assert torch.equal(state["stem.0.weight"], supernet.stem[0].weight)
    assert int(state["stem.1.num_batches_tracked"]) == 2
    assert not torch.allclose(state["stem.1.running_var"], torch.ones(4))
    net = load_network(tmp_path / "out" / "model.json")
    assert not net.training and torch.equal(net.stem[1].running_mean, state["stem.1.running_mean"])
    (tmp_path / "out" / "model.pt").write_bytes(b"not a state dict")
    with pytest.raises(DataError, match=r"weights .*model\.pt"):
        load_network(tmp_path / "out" / "model.json")
    torch.save({"stem.0.weight": torch.zeros(1)}, tmp_path / "out" / "model.pt")
    with pytest.raises(DataError, match=r"model\.pt: not the weights of .*model\.json"):
        load_network(tmp_path / "out" / "model.json")


def readme_snippet() -> str:
    """The Python block of the README's Export section, as written there."""
    section = (ROOT / "README.md").read_text().split("## Export", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    "space, arch",
    [
        ("nb201_tiny", DEAD_END),
        ("chain_tiny", "ir_k5_e3|ir_k3_e6|ir_k7_e3|skip"),
    ],
)
def test_export_loads_in_a_fresh_process_with_no_config(tmp_path, space, arch):
    """The README's snippet, run as written in a new Python process, for each space."""
    assert 'build_network(**json.load(open("model.json")))' in readme_snippet()
    cfg = make_cfg("export", tmp_path, [f"space={space}", f"arch='{arch}'", "torchscript=true"])
    out = export.run(cfg, overrides=[])
    x = torch.randn(2, 1, 8, 8)
    torch.save(x, tmp_path / "x.pt")
    net = build_network(**out["spec"])
    net.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    with torch.no_grad():
        torch.save(net.eval()(x), tmp_path / "expected.pt")
    snippet = (
        readme_snippet()
        + """
x, expected = torch.load("x.pt"), torch.load("expected.pt")
# another process may run other thread counts: the same sums in another order, not other values
assert torch.allclose(net(x), expected, rtol=1e-5, atol=1e-6)
assert torch.allclose(torch.jit.load("model.ts")(x), expected, rtol=1e-5, atol=1e-6)
print(type(net).__name__, sum(p.numel() for p in net.parameters()))
"""
    )
    proc = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == ("NB201Network" if space == "nb201_tiny" else "ChainNetwork")
    assert json.loads((tmp_path / "model.json").read_text())["arch"] == arch
    assert (tmp_path / "export_run.json").is_file()


def test_onnx_export_matches(tmp_path):
    cfg = make_cfg("export", tmp_path, [f"arch='{DEAD_END}'", "onnx=true"])
    if importlib.util.find_spec("onnx") is None:
        with pytest.raises(DataError, match="onnx=true needs the onnx package"):
            export.run(cfg, overrides=[])
        assert not (tmp_path / "model.pt").exists()
        pytest.skip("the onnx package is not installed (an optional extra): refusal tested")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    out = export.run(cfg, overrides=[])
    net = build_network(**out["spec"])
    net.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    x = torch.randn(1, 1, 8, 8)
    (got,) = ort.InferenceSession(out["files"]["onnx"]).run(None, {"x": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), net.eval()(x), rtol=1e-4, atol=1e-5)


def write_best_arch(path: Path, space, arch: str, with_space: bool = True) -> Path:
    record = arch_record(space, space.parse(arch), {"name": "digits"}, score=1.0)
    if not with_space:
        record.pop("space")
    write_arch_record(path, record)
    return path


def test_export_from_a_chain_best_arch_needs_no_space(tmp_path):
    arch = "ir_k3_e6|ir_k3_e3|ir_k5_e6|ir_k7_e3"
    best = write_best_arch(tmp_path / "best_arch.json", CHAIN, arch)
    cfg = make_cfg("export", tmp_path / "out", [f"arch={best}"])  # debug=tiny: nb201_tiny
    out = export.run(cfg, overrides=[])
    assert out["spec"]["space"] == "chain" and out["spec"]["space_config"] == CHAIN.config()
    cfg = make_cfg("export", tmp_path / "out", [f"arch={best}", "space=nb201_tiny"])
    with pytest.raises(DataError, match=r"records space chain .* gives space nb201 \{'C': 4"):
        export.run(cfg, overrides=["space=nb201_tiny"])


def test_retrain_refuses_a_conflicting_space_override(tmp_path):
    best = write_best_arch(tmp_path / "best_arch.json", NB201, DEAD_END)
    cfg = make_cfg("retrain", tmp_path / "r", [f"arch={best}", "space=nb201"])
    with pytest.raises(DataError, match=r"records space nb201 \{'C': 4, 'N': 1\}.*\{'C': 16"):
        retrain.run(cfg, overrides=["space=nb201"])
    proc = subprocess.run(
        [sys.executable, "scripts/retrain.py", f"arch={best}", "space=chain_tiny"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "records space nb201" in proc.stderr and "gives space chain" in proc.stderr


@pytest.mark.parametrize("with_space", [True, False])
def test_retrain_trains_the_standalone_network_of_the_file(tmp_path, with_space):
    """A chain_tiny best_arch.json retrains with debug=tiny alone (its space read from the file);
    an old file without a space uses the configured one, as before."""
    arch = "ir_k3_e3|skip|ir_k3_e3|ir_k3_e3" if with_space else DEAD_END
    space = CHAIN if with_space else NB201
    best = write_best_arch(tmp_path / "best_arch.json", space, arch, with_space)
    cfg = make_cfg("retrain", tmp_path / "r", [f"arch={best}", "data.resolution=4"])
    out = retrain.run(cfg, overrides=[])
    assert out["summary"]["arch"] == arch and 0.0 <= out["summary"]["test_acc"] <= 100.0
    assert out["summary"]["config"]["data"]["resolution"] == 0  # the real task, not the proxy
    spec = json.loads((tmp_path / "r" / "model.json").read_text())
    assert spec["space"] == space.name and spec["space_config"] == space.config()
    net = build_network(**spec)
    net.load_state_dict(torch.load(tmp_path / "r" / "model.pt", weights_only=True))
    assert net.stem[1].num_batches_tracked > 0  # trained: not the fresh network
    # save_hyperparameters: the loggers' hparams.yaml says what was trained (was {})
    hparams = [yaml.safe_load(p.read_text()) for p in (tmp_path / "r").rglob("hparams.yaml")]
    assert hparams and all(h["net"]["space_config"] == space.config() for h in hparams)
    assert hparams[0]["reference_archs"] == [arch] and hparams[0]["optimizer"]["name"] == "SGD"


def test_known_noise_is_silenced_and_nothing_else(caplog):
    import logging
    import warnings

    from supernet.noise import LIGHTNING_LOG, silence_known_noise

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        silence_known_noise()
        silence_known_noise()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1
        )
        warnings.warn("something else", FutureWarning, stacklevel=1)
        logging.getLogger(LIGHTNING_LOG).info("Tip: try installing [litlogger](...)")
        logging.getLogger(LIGHTNING_LOG).info("GPU available: False")
    assert [str(w.message) for w in caught] == ["something else"]
    assert "GPU available" in caplog.text and "litlogger" not in caplog.text


def test_retrain_fine_tunes_exported_supernet_weights(tmp_path):
    """export.py ckpt_path=... then retrain.py init_weights=model.pt: training starts from the
    supernet's weights (with lr 0 they come out unchanged); another network's weights are refused."""
    supernet = randomise(SuperNet(NB201, 10, 1, share_convs=True))
    ckpt = save_supernet_ckpt(tmp_path / "last.ckpt", supernet)
    ex = make_cfg("export", tmp_path / "ex", [f"arch='{DEAD_END}'", f"ckpt_path={ckpt}"])
    export.run(ex, overrides=[])
    inherited = torch.load(tmp_path / "ex" / "model.pt", weights_only=True)
    over = [f"arch='{DEAD_END}'", f"init_weights={tmp_path / 'ex' / 'model.pt'}"]
    cfg = make_cfg("retrain", tmp_path / "r", [*over, "supernet.optimizer.lr=0"])
    retrain.run(cfg, overrides=[])
    trained = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    for key in ("stem.0.weight", "blocks.0.edges.3_1.1.weight", "classifier.weight"):
        assert torch.equal(trained[key], inherited[key]), key
    other = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
    cfg = make_cfg("retrain", tmp_path / "bad", [f"arch='{other}'", *over[1:]])
    with pytest.raises(DataError, match=r"init_weights=.*model\.pt: not the weights of"):
        retrain.run(cfg, overrides=[])
    assert not (tmp_path / "bad" / "retrain.json").exists()


def test_retrain_cross_validates_over_every_image_and_keeps_finished_folds(tmp_path, monkeypatch):
    """folds=2: two networks, each tested on its half of all 1,797 digits, the pooled accuracy
    their image-weighted mean. A rerun keeps finished folds, resumes an unfinished one from its
    last checkpoint, and refuses (overwriting nothing) a folder trained with other settings."""
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    over = [f"arch='{arch}'", "folds=2", "save_model=false"]
    out = retrain.run(make_cfg("retrain", tmp_path, over), overrides=[])["summary"]
    folds = out["folds"]
    assert [f["fold"] for f in folds] == [0, 1] and out["test_images"] == 1797
    assert sorted(f["test_images"] for f in folds) == [898, 899]
    weighted = sum(f["test_acc"] * f["test_images"] for f in folds) / 1797
    assert out["test_acc"] == pytest.approx(weighted) and out["arch"] == arch
    assert out["test_acc"] == 100 * out["test_correct"] / 1797  # exact: from the counts
    saved = json.loads((tmp_path / "retrain.json").read_text())
    assert saved["test_acc"] == out["test_acc"] and saved["config"]["folds"] == 2
    first = (tmp_path / "fold-0" / "retrain.json").read_bytes()

    calls = []
    real_train = retrain.train

    def spy(cfg, test=False):
        calls.append(cfg.ckpt_path)
        return real_train(cfg, test=test)

    monkeypatch.setattr(retrain, "train", spy)
    again = retrain.run(make_cfg("retrain", tmp_path, over), overrides=[])["summary"]
    assert not calls and again["test_acc"] == out["test_acc"]  # both folds kept

    (tmp_path / "fold-1" / "retrain.json").unlink()  # killed after training, before its result
    resumed = retrain.run(make_cfg("retrain", tmp_path, over), overrides=[])["summary"]
    assert calls == [str(tmp_path / "fold-1" / "checkpoints" / "last.ckpt")]
    assert resumed["folds"][1]["test_acc"] == pytest.approx(folds[1]["test_acc"])

    other = make_cfg("retrain", tmp_path, [*over, "trainer.max_epochs=2"])
    with pytest.raises(DataError, match=r"fold-0/retrain.json was retrained with other settings"):
        retrain.run(other, overrides=[])
    assert (tmp_path / "fold-0" / "retrain.json").read_bytes() == first
    resume = make_cfg("retrain", tmp_path / "x", [*over, "ckpt_path=last.ckpt"])
    with pytest.raises(DataError, match="ckpt_path=last.ckpt with folds=2"):
        retrain.run(resume, overrides=[])
    begun = tmp_path / "z" / "fold-0"  # a fold whose training began with other settings
    begun.mkdir(parents=True)
    (begun / "train_run.json").write_text(json.dumps({"config": {"seed": 99}}))
    with pytest.raises(DataError, match=r"fold-0/train_run.json was retrained with other"):
        retrain.run(make_cfg("retrain", tmp_path / "z", over), overrides=[])
    (begun / "retrain.json").write_text("{cut off")
    with pytest.raises(DataError, match=r"fold-0/retrain.json is not JSON text"):
        retrain.run(make_cfg("retrain", tmp_path / "z", over), overrides=[])
    assert (begun / "retrain.json").read_text() == "{cut off"
    (begun / "retrain.json").write_text("[98.5]")
    with pytest.raises(DataError, match=r"expected a JSON object with numeric test_acc"):
        retrain.run(make_cfg("retrain", tmp_path / "z", over), overrides=[])
    with pytest.raises(DataError, match="folds=0"):
        retrain.run(make_cfg("retrain", tmp_path / "y", [*over, "folds=0"]), overrides=[])
