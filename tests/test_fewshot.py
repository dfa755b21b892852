import pytest
import torch
import torch.nn.functional as F

from supernet.fewshot import FewShotSuperNet
from supernet.model import build_supernet
from supernet.module import load_supernet
from supernet.nb201_space import NB201Space
from supernet.network import build_network, inherit_weights
from supernet.stages.train import run
from tests.conftest import make_cfg

SPACE = NB201Space(C=4, N=1)
CONVS = SPACE.parse(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)


def part_weights(net: FewShotSuperNet, k: int) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parts[k].parameters()]


def test_split_copies_weights_and_momentum_then_each_op_trains_only_its_part():
    torch.manual_seed(0)
    net = build_supernet(SPACE, 10, 3, split_edge=2, share_convs=True)
    assert isinstance(net, FewShotSuperNet) and len(net.parts) == len(SPACE.ops)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    # before the split every arch, whatever its op on the edge, trains part 0
    other = CONVS[:2] + (0,) + CONVS[3:]
    assert net.part(CONVS) is net.part(other) is net.parts[0]
    F.cross_entropy(net(x, other), y).backward()
    opt.step()
    before = [part_weights(net, k) for k in range(len(net.parts))]
    assert not all(torch.equal(a, b) for a, b in zip(before[0], before[1]))
    net.split(opt)
    net.split(opt)  # a second call changes nothing
    for k in range(1, len(net.parts)):
        assert all(torch.equal(a, b) for a, b in zip(part_weights(net, k), before[0]))
        for src, dst in zip(net.parts[0].parameters(), net.parts[k].parameters()):
            if src in opt.state:
                assert torch.equal(
                    opt.state[dst]["momentum_buffer"], opt.state[src]["momentum_buffer"]
                )
                assert opt.state[dst]["momentum_buffer"] is not opt.state[src]["momentum_buffer"]
    # after it, CONVS (op skip_connect on edge 2) trains its own part and no other
    split = [part_weights(net, k) for k in range(len(net.parts))]
    opt.zero_grad(set_to_none=True)
    assert net.part(CONVS) is net.parts[CONVS[2]]
    F.cross_entropy(net(x, CONVS), y).backward()
    opt.step()
    for k in range(len(net.parts)):
        same = all(torch.equal(a, b) for a, b in zip(part_weights(net, k), split[k]))
        assert same == (k != CONVS[2])


def test_a_split_outside_the_space_or_the_training_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match="split_edge=6: expected a decision of space nb201 from 0 to 5"
    ):
        build_supernet(SPACE, 10, 3, split_edge=6)
    with pytest.raises(Exception, match="split_at=1.0"):
        run(make_cfg("train", tmp_path, ["supernet.net.split_edge=0", "supernet.split_at=1.0"]))


def test_training_splits_and_the_checkpoint_loads_routes_and_exports(tmp_path):
    overrides = ["supernet.net.split_edge=2", "trainer.max_epochs=2", "supernet.split_at=0.5"]
    result = run(make_cfg("train", tmp_path, overrides))
    net, record = load_supernet(result["ckpt_path"])
    assert record["meta"]["split_edge"] == 2 and bool(net.split_done)
    hparams = torch.load(result["ckpt_path"], weights_only=True)["hyper_parameters"]
    assert hparams["split_at"] == 0.5
    # the epoch after the split trained the parts apart
    assert not all(torch.equal(a, b) for a, b in zip(part_weights(net, 0), part_weights(net, 3)))
    # a standalone network of an arch takes the weights of the arch's part
    x = torch.randn(3, 1, 8, 8)
    network = inherit_weights(
        build_network(SPACE, CONVS, 10, 1, affine=False, track_running_stats=False), net
    )
    network.eval()
    assert torch.allclose(network(x), net(x, CONVS), atol=1e-5)


def test_resuming_across_one_shot_and_few_shot_is_refused_naming_the_split(tmp_path):
    one_shot = run(make_cfg("train", tmp_path / "a"))
    cfg = make_cfg(
        "train",
        tmp_path / "b",
        [
            "supernet.net.split_edge=0",
            f"ckpt_path={one_shot['ckpt_path']}",
            "trainer.max_epochs=2",
        ],
    )
    with pytest.raises(ValueError, match="split_edge: checkpoint has None, config has 0"):
        run(cfg)
