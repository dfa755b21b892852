import csv

import pytest

from supernet.space import NB201Space, get_space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_size_and_round_trips():
    space = NB201Space()
    archs = list(space.all_archs())
    assert len(archs) == space.size == 15_625
    assert len(set(archs)) == 15_625
    for i in (0, 1, 4, 5, 777, 15_624):
        arch = space.from_index(i)
        assert space.index(arch) == i
        assert space.parse(space.to_str(arch)) == arch
    assert [space.index(a) for a in archs] == list(range(15_625))


def test_string_format_and_edge_order():
    space = NB201Space()
    arch = space.parse(BEST)
    assert arch == (3, 3, 3, 1, 3, 2)
    assert space.to_str(arch) == BEST
    assert space.edges == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|",
        "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # wrong source node
        "|none~0|+|none~0|none~1|+|none~0|none~1|",  # missing edge
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
    ],
)
def test_malformed_strings_name_the_string_and_format(bad):
    with pytest.raises(ValueError) as err:
        NB201Space().parse(bad)
    assert repr(bad) in str(err.value)
    assert "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in str(err.value)


def test_unknown_op_is_named():
    with pytest.raises(ValueError, match="unknown op 'conv_5x5'"):
        NB201Space().parse("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_bad_indices_and_space_name():
    space = NB201Space()
    with pytest.raises(ValueError, match="outside"):
        space.from_index(15_625)
    with pytest.raises(ValueError, match="op indices"):
        space.to_str((0, 0, 0, 0, 0, 7))
    with pytest.raises(ValueError, match="unknown search space"):
        get_space("darts")


def test_iso_key_basic_equivalences():
    space = NB201Space()
    key = lambda s: space.iso_key(space.parse(s))  # noqa: E731
    # Node 1 is a copy of node 0, so the two parallel edges into node 3 may swap their ops.
    x = key("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    y = key("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    z = key("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|")
    assert x == y != z
    # What feeds a node nobody reads does not matter.
    a = key("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    b = key("|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    assert a == b
    assert len({space.iso_key(a) for a in space.all_archs()}) == 6_466


def test_minimum_cost_is_the_skeleton():
    cost = NB201Space().cost((0,) * 6)
    assert cost.params_M == pytest.approx(0.073306, abs=1e-9)
    assert cost.flops_M == pytest.approx(7.78305, abs=1e-9)


def test_against_benchmark_csv(nb201_csv):
    """Strings, isomorphism classes, FLOPs and params equal the benchmark's for all 15,625 archs."""
    space = NB201Space()
    rows = list(csv.DictReader(open(nb201_csv)))
    assert len(rows) == 15_625
    ours, theirs = {}, {}
    for row in rows:
        arch = space.parse(row["arch"])
        assert space.to_str(arch) == row["arch"]
        assert [space.ops[a] for a in arch] == [
            row[c]
            for c in (
                "op_1_from_0",
                "op_2_from_0",
                "op_2_from_1",
                "op_3_from_0",
                "op_3_from_1",
                "op_3_from_2",
            )
        ]
        for shape, classes, key in (
            ((3, 32, 32), 10, "cifar10"),
            ((3, 32, 32), 100, "cifar100"),
            ((3, 16, 16), 120, "imagenet16"),
        ):
            cost = space.cost(arch, shape, classes)
            assert cost.flops_M == pytest.approx(float(row[f"flops_{key}_M"]), abs=1e-6)
            assert cost.params_M == pytest.approx(float(row[f"params_{key}_M"]), abs=1e-9)
        ours.setdefault(space.iso_key(arch), set()).add(row["unique_str"])
        theirs.setdefault(row["unique_str"], set()).add(space.iso_key(arch))
    assert len(ours) == len(theirs) == 6_466
    assert all(len(v) == 1 for v in ours.values()) and all(len(v) == 1 for v in theirs.values())


def test_each_space_owns_its_defaults():
    from supernet.chain_model import ChainSuperNet
    from supernet.model import SuperNet
    from supernet.space import SPACES, ChainSpace

    assert SPACES == {"nb201": NB201Space, "chain": ChainSpace}
    nb201, chain = NB201Space(C=4, N=1), ChainSpace(widths=(8,), layers=(2,), strides=(1,))
    assert nb201.default_reference_archs()[0] == nb201.parse(BEST)
    assert len(chain.reference_archs) == 0 and len(chain.default_reference_archs()) == 4
    assert (nb201.graph_pool, chain.graph_pool) == ("output", "mean")
    assert (nb201.has_latency_table, chain.has_latency_table) == (False, True)
    assert nb201.build_supernet(10, share_convs=True).weights == "shared_convs"
    assert type(nb201.build_supernet(10)) is SuperNet and nb201.supernet_class() is SuperNet
    assert type(chain.build_supernet(10, share_convs=True)) is ChainSuperNet  # always entangled
    assert nb201.enumerable and ChainSpace().size > ChainSpace().max_enumerate
    assert not ChainSpace().enumerable


def test_space_modules_import_no_part_and_not_the_registry():
    """The registry imports the spaces, the parts (supernets, networks, graph encoders) import the
    spaces; a space module imports neither at load time, so there is no import cycle."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "supernet"
    for name in ("space_base", "nb201_space", "chain_space"):
        tree = ast.parse((root / f"{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = {n.module or "" for n in top if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        ours = {m for m in modules if m.split(".")[0] in ("supernet", "predictor", "torch")}
        assert ours <= {"supernet.space_base"}, (name, ours)
