from collections import Counter

import pytest

from supernet.chain_space import ChainSpace
from supernet.sampler import (
    FairSampler,
    IsomorphismSampler,
    PriorSampler,
    SandwichSampler,
    UniformSampler,
)
from supernet.space import NB201Space

SPACE = NB201Space()


@pytest.mark.parametrize("cls", [UniformSampler, IsomorphismSampler, FairSampler, SandwichSampler])
def test_seeded_and_resumable(cls):
    a, b = cls(SPACE, seed=3), cls(SPACE, seed=3)
    assert [a.sample_step() for _ in range(5)] == [b.sample_step() for _ in range(5)]
    state = a.state_dict()
    ahead = [a.sample_step() for _ in range(5)]
    c = cls(SPACE, seed=99)
    c.load_state_dict(state)
    assert [c.sample_step() for _ in range(5)] == ahead
    assert all(SPACE.check(arch) == arch for step in ahead for arch in step)


def test_uniform_covers_ops_evenly():
    s = UniformSampler(SPACE, seed=0)
    counts = Counter(op for _ in range(5000) for op in s.sample())
    assert set(counts) == set(range(5))
    assert max(counts.values()) / min(counts.values()) < 1.1


def test_fair_step_uses_every_op_of_every_edge_once():
    s = FairSampler(SPACE, seed=1)
    for _ in range(20):
        step = s.sample_step()
        assert len(step) == s.paths_per_step == 5
        for e in range(6):
            assert sorted(arch[e] for arch in step) == list(range(5))


def test_isomorphism_sampler_is_uniform_over_classes():
    s = IsomorphismSampler(SPACE, seed=0)
    assert len(s.classes) == 6466
    keys = Counter(SPACE.iso_key(s.sample()) for _ in range(20000))
    # The largest class has hundreds of members; uniform over archs would draw it ~ 20000 * 275 /
    # 15625 = 352 times, uniform over classes ~ 20000 / 6466 = 3 times.
    big = max(s.classes, key=len)
    assert len(big) > 100
    assert keys[SPACE.iso_key(big[0])] < 15
    assert len(keys) > 5000


def test_sandwich_step_is_the_largest_the_smallest_and_random_archs():
    s = SandwichSampler(SPACE, seed=0, paths=4)
    big, small = (
        SPACE.parse(a)
        for a in (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
            "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        )
    )
    steps = [s.sample_step() for _ in range(50)]
    assert all(len(step) == s.paths_per_step == 4 and step[:2] == [big, small] for step in steps)
    assert len({arch for step in steps for arch in step[2:]}) > 90  # the rest drawn at random
    assert SPACE.cost(big).params_M == max(SPACE.cost(a).params_M for a in SPACE.all_archs())
    chain = ChainSpace()
    large, least = SandwichSampler(chain, seed=0, paths=3).ends
    assert chain.cost(large).flops_M > chain.cost(least).flops_M
    assert all(chain.check(a) == a for a in (large, least))
    with pytest.raises(ValueError, match="sampler.paths=2"):
        SandwichSampler(SPACE, paths=2)


def prior_file(path, n=400, seed=0):
    """A zero-shot file of n distinct archs whose score is the number of 3x3 convs (+ noise)."""
    import random

    rng, rows, seen = random.Random(seed), ["arch,meco,wrcor"], set()
    while len(rows) <= n:
        a = SPACE.sample(rng)
        if a not in seen:
            seen.add(a)
            rows.append(f"{SPACE.to_str(a)},{a.count(3) + rng.random()},{-a.count(3)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_prior_sampler_follows_the_file_and_resumes(tmp_path):
    scores = prior_file(tmp_path / "zs.csv")
    a, b = (PriorSampler(SPACE, seed=3, scores=str(scores)) for _ in range(2))
    assert [a.sample() for _ in range(20)] == [b.sample() for _ in range(20)]
    state = a.state_dict()
    ahead = [a.sample() for _ in range(20)]
    c = PriorSampler(SPACE, seed=9, scores=str(scores))
    c.load_state_dict(state)
    assert [c.sample() for _ in range(20)] == ahead
    # the 3x3-rich archs the column favours are drawn more often than uniform sampling draws them
    convs = lambda s, k: sum(s.sample().count(3) for _ in range(k)) / k  # noqa: E731
    uniform = convs(UniformSampler(SPACE, seed=0), 4000)  # 6 edges x 1/5 = 1.2
    assert convs(PriorSampler(SPACE, seed=0, scores=str(scores)), 4000) > uniform + 0.4
    against = PriorSampler(SPACE, seed=0, scores=str(scores), column="wrcor")
    assert convs(against, 4000) < uniform - 0.2  # the column decides the direction
    only_file = PriorSampler(SPACE, seed=0, scores=str(scores), mix=0.0)
    listed = set(only_file.archs)
    assert all(only_file.sample() in listed for _ in range(200))


def test_prior_sampler_bad_settings_name_the_value(tmp_path):
    scores = prior_file(tmp_path / "zs.csv", n=5)
    with pytest.raises(ValueError, match="sampler.scores"):
        PriorSampler(SPACE)
    with pytest.raises(ValueError, match="sampler.temperature=0"):
        PriorSampler(SPACE, scores=str(scores), temperature=0)
    with pytest.raises(ValueError, match="sampler.mix=1"):
        PriorSampler(SPACE, scores=str(scores), mix=1)
    with pytest.raises(ValueError, match="naswot"):
        PriorSampler(SPACE, scores=str(scores), column="naswot")
