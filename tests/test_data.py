import pickle

import numpy as np
import pytest
import torch

from supernet.data import NASDataModule, cross_fold, downsample, load_cifar10, load_digits
from supernet.utils import DataError


def test_digits_is_real_and_split():
    a = load_digits()
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.y_train) + len(a.y_test) == 1797
    assert a.x_train.dtype == torch.uint8 and int(a.x_train.max()) > 200


def test_heldout_split_is_disjoint_and_seeded():
    dm = NASDataModule("digits", heldout_fraction=0.25, seed=0)
    dm.setup()
    tr, held = dm.splits["train"][0], dm.splits["heldout"][0]
    n = len(load_digits().y_train)
    assert len(held) == round(n * 0.25) and len(tr) + len(held) == n
    flat = lambda x: {bytes(r) for r in x.flatten(1).numpy()}  # noqa: E731
    assert len(flat(tr) & flat(held)) < 10  # digits has a few duplicate images, no shared rows
    dm2 = NASDataModule("digits", heldout_fraction=0.25, seed=0)
    dm2.setup()
    assert torch.equal(dm2.splits["heldout"][0], held)


def test_cross_validation_folds_test_every_image_once():
    """K folds over the pooled images: disjoint test splits whose union is every image, each
    fold's training set the rest; the same folds for every training seed."""
    a = load_digits()
    pooled = torch.cat([a.y_train, a.y_test])
    ids = lambda x: [bytes(r) for r in x.flatten(1).numpy()]  # noqa: E731
    every = sorted(ids(torch.cat([a.x_train, a.x_test])))
    tests = []
    for k in range(5):
        f = cross_fold(a, 5, k)
        assert len(f.y_train) + len(f.y_test) == 1797 and len(f.y_test) in (359, 360)
        assert sorted(ids(torch.cat([f.x_train, f.x_test]))) == every
        assert torch.equal(torch.cat([f.y_train, f.y_test]).sort().values, pooled.sort().values)
        tests += ids(f.x_test)
    assert sorted(tests) == every  # each image tested by exactly one fold
    dm = NASDataModule("digits", folds=5, fold=3, seed=7)
    dm.setup()
    fold3 = cross_fold(a, 5, 3)
    assert torch.equal(dm.splits["test"][0], fold3.x_test)
    assert len(dm.splits["train"][1]) + len(dm.splits["heldout"][1]) == len(fold3.y_train)


@pytest.mark.parametrize(
    ("folds", "fold", "named"),
    [
        (1, 0, "data.folds=1"),
        (5, 5, "data.fold=5"),
        (-2, 0, "data.folds=-2"),
        (3, -1, "data.fold=-1"),
    ],
)
def test_bad_folds_are_named(folds, fold, named):
    with pytest.raises(DataError, match=named):
        NASDataModule("digits", folds=folds, fold=fold)


def test_more_folds_than_images_is_named():
    with pytest.raises(DataError, match="data.folds=2000: expected 2 to at most the 1797 images"):
        cross_fold(load_digits(), 2000, 0)


def test_loader_epochs_are_reproducible_and_differ():
    dm = NASDataModule("digits", batch_size=50, pad=1, flip=True, seed=1)
    dm.setup()
    loader = dm.train_dataloader()
    loader.set_epoch(3)
    first = [x for x, _ in loader]
    again = [x for x, _ in loader]
    loader.set_epoch(4)
    other = [x for x, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (50, 1, 8, 8) and len(first) == len(loader)


def test_resolution_area_averages_every_split():
    x = torch.arange(2 * 16, dtype=torch.uint8).view(2, 1, 4, 4) * 7
    small = downsample(x, (2, 2))
    assert small.dtype == torch.uint8 and small.shape == (2, 1, 2, 2)
    assert small[0, 0, 0, 0] == round((0 + 1 + 4 + 5) * 7 / 4)  # the top-left 2x2 block's mean
    dm = NASDataModule("digits", input_shape=(1, 8, 8), resolution=4, batch_size=2000, seed=0)
    dm.setup()
    assert dm.input_shape == (1, 4, 4)
    assert {tuple(x.shape[1:]) for x, _ in dm.splits.values()} == {(1, 4, 4)}
    full = NASDataModule("digits", seed=0)
    full.setup()
    want = downsample(full.splits["heldout"][0][:3], (4, 4))
    assert torch.equal(dm.splits["heldout"][0][:3], want)  # the same split, smaller
    capped = NASDataModule("digits", resolution=16, seed=0)  # a cap: 8x8 images stay 8x8
    capped.setup()
    assert torch.equal(capped.splits["heldout"][0], full.splits["heldout"][0])
    with pytest.raises(DataError, match=r"data.resolution=-1: expected an integer >= 0"):
        NASDataModule("digits", resolution=-1)


def test_crop_shifts_pixels():
    dm = NASDataModule("digits", batch_size=2000, pad=2, seed=0)
    dm.setup()
    plain = dm.loader("train")
    aug = dm.loader("train", train=True)
    aug.shuffle = False
    (x0, _), (x1, _) = next(iter(plain)), next(iter(aug))
    assert x0.shape == x1.shape
    same = (x0 == x1).flatten(1).all(1).float().mean()
    assert 0.0 < same < 0.2  # 1 in 25 shifts is (0, 0)


def test_cifar_npz_layout(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 10)):
        np.savez(
            tmp_path / f"{split}.npz",
            x=rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8),
            y=rng.integers(0, 10, n),
        )
    a = load_cifar10(tmp_path)
    assert a.x_train.shape == (20, 3, 32, 32) and a.x_test.shape == (10, 3, 32, 32)
    x = np.load(tmp_path / "train.npz")["x"]
    assert torch.equal(a.x_train[3], torch.from_numpy(x[3]).permute(2, 0, 1))


def test_cifar_torchvision_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 4]}
        (folder / name).write_bytes(pickle.dumps(d))
    a = load_cifar10(tmp_path)
    assert a.x_train.shape == (20, 3, 32, 32) and a.y_test.tolist() == [1, 2, 3, 4]


def test_missing_cifar_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_cifar10(tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "train.npz") in msg and "cifar-10-batches-py" in msg
    assert "data.download=true" in msg and "shared" not in msg


def test_config_mismatch_is_named():
    dm = NASDataModule("digits", num_classes=100)
    with pytest.raises(ValueError, match="num_classes=100"):
        dm.setup()


def test_damaged_or_wrong_npz_is_named(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "test.npz",
        x=rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
        y=np.zeros(4),
    )
    (tmp_path / "train.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"train.npz is damaged"):
        load_cifar10(tmp_path)
    np.savez(tmp_path / "train.npz", x=np.zeros((4, 32, 32), np.uint8), y=np.zeros(4))
    with pytest.raises(ValueError, match=r"train.npz: found x uint8 \(4, 32, 32\)"):
        load_cifar10(tmp_path)
