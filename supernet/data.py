"""Datasets as uint8 tensors, a device-resident batch loader with on-device augmentation, and the
Lightning data module that splits the training set into supernet-training and held-out ranking parts."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from supernet.utils import DataError, check_count

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


@dataclass
class Arrays:
    """A whole dataset in memory.

    Shapes:
        x_train `(N, C, H, W)` uint8, y_train `(N,)` int64; likewise x_test, y_test.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


def load_digits(test_fraction: float = 1 / 6, seed: int = 0) -> Arrays:
    """scikit-learn's bundled digits: 1,797 real 8x8 grey images of 10 classes, nothing downloaded."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.from_numpy(np.clip(d.images * 16, 0, 255).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(y) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return Arrays("digits", x[train], y[train], x[test], y[test], 10)


def _nhwc(x: np.ndarray) -> torch.Tensor:
    return (
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)).permute(0, 3, 1, 2).contiguous()
    )


def load_cifar10(root: str | Path, download: bool = False) -> Arrays:
    """CIFAR-10 from `root`: `train.npz`/`test.npz` (`x` uint8 NHWC, `y`) or torchvision's
    `cifar-10-batches-py`; the latter is downloaded into `root` when `download` is true."""
    root = Path(root).expanduser()
    npz = root / "train.npz", root / "test.npz"
    batches = root / "cifar-10-batches-py"
    if all(p.is_file() for p in npz):
        (xtr, ytr), (xte, yte) = (_read_npz(p) for p in npz)
        return Arrays("cifar10", xtr, ytr, xte, yte, 10)
    if not batches.is_dir() and download:
        _download_cifar10(root)
    if batches.is_dir():
        return _read_cifar10_batches(batches)
    raise FileNotFoundError(
        f"CIFAR-10 not found: looked for {npz[0]} and {npz[1]} (x uint8 NHWC, y), and for {batches}/ "
        f"(torchvision's layout). Write the npz files there, or pass data.download=true to fetch "
        f"torchvision's layout from {CIFAR10_URL} (163 MB)."
    )


def _read_npz(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """`x` uint8 (N, H, W, 3) and `y` (N,) from one npz; a damaged file is named, not half-read."""
    expected = "arrays x uint8 (N, 32, 32, 3) and y (N,)"
    try:
        with np.load(path) as z:
            x, y = z["x"], z["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path} is damaged or not a CIFAR-10 npz ({err}); expected {expected}"
        ) from None
    if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8 or y.shape != (len(x),):
        raise DataError(f"{path}: found x {x.dtype} {x.shape}, y {y.shape}; expected {expected}")
    bad = np.flatnonzero((y < 0) | (y >= 10) | (y != np.round(y)))
    if len(bad):
        raise DataError(
            f"{path}: label y[{bad[0]}]={y[bad[0]].item()!r} ({len(bad)} such); expected "
            "class indices 0..9"
        )
    return _nhwc(x), torch.from_numpy(y.astype(np.int64))


def _read_cifar10_batches(folder: Path) -> Arrays:
    def read(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(f"CIFAR-10 batch {path} is missing")
            # torchvision's layout is pickle by definition: loading it runs whatever the file
            # says, so only use files from a source you trust; the npz layout holds arrays only
            with open(path, "rb") as f:
                d = pickle.load(f, encoding="bytes")
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[b"labels"], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    x_tr, y_tr = read([f"data_batch_{i}" for i in range(1, 6)])
    x_te, y_te = read(["test_batch"])
    return Arrays("cifar10", x_tr, y_tr, x_te, y_te, 10)


def _download_cifar10(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "cifar-10-python.tar.gz.part"
    urllib.request.urlretrieve(CIFAR10_URL, tmp)
    md5 = hashlib.md5(tmp.read_bytes()).hexdigest()
    if md5 != CIFAR10_MD5:
        tmp.unlink()
        raise ValueError(f"downloaded {CIFAR10_URL} has md5 {md5}, expected {CIFAR10_MD5}")
    with tarfile.open(tmp) as tar:
        tar.extractall(root, filter="data")
    tmp.unlink()


def downsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 images `(N, C, H, W)` area-averaged to `(N, C, *size)`, rounded back to uint8; in
    chunks, so a whole dataset is never held as floats at once."""
    out = [
        torch.nn.functional.adaptive_avg_pool2d(x[i : i + 4096].float(), size)
        .round()
        .to(torch.uint8)
        for i in range(0, len(x), 4096)
    ]
    return torch.cat(out) if out else x.new_zeros((0, x.shape[1], *size))


# The folds' shuffle: fixed, so every arch and training seed is tested on the same images.
FOLD_SEED = 0


def check_folds(folds: Any, fold: Any) -> tuple[int, int]:
    """`data.folds` and `data.fold` as ints: folds 0 (the data's own test split) or K >= 2, and
    fold below K.

    Raises:
        DataError: either value out of range, named.
    """
    folds = check_count("data.folds", folds, 0, "0: the data's own test split")
    fold = check_count("data.fold", fold, 0)
    if folds == 1 or (folds and fold >= folds):
        raise DataError(
            f"data.folds={folds}, data.fold={fold}: expected folds 0 or >= 2 and fold below it"
        )
    return folds, fold


def cross_fold(a: Arrays, folds: int, fold: int) -> Arrays:
    """Fold `fold` of `folds`-fold cross-validation over all of `a`'s images (training and test
    pooled, shuffled once with `FOLD_SEED`): that fold is the test split, the rest the training
    set. The folds partition the images, so `folds` runs test every image once.

    Raises:
        DataError: `folds` below 2 or above the image count, or `fold` outside `0..folds-1`.
    """
    x = torch.cat([a.x_train, a.x_test])
    y = torch.cat([a.y_train, a.y_test])
    folds, fold = check_folds(folds, fold)
    if not 2 <= folds <= len(y):
        raise DataError(
            f"data.folds={folds}: expected 2 to at most the {len(y)} images of {a.name}"
        )
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(FOLD_SEED))
    parts = list(torch.tensor_split(perm, folds))
    test = parts.pop(fold)
    train = torch.cat(parts).sort().values  # the stored order: only the test images leave
    return replace(a, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])


def load_arrays(name: str, root: str | None = None, download: bool = False) -> Arrays:
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        if not root:
            raise ValueError(
                "data=cifar10 needs data.root=DIR (train.npz/test.npz or cifar-10-batches-py)"
            )
        return load_cifar10(root, download)
    raise ValueError(f"unknown dataset {name!r}; expected digits or cifar10")


class DeviceLoader:
    """Batches of one split, kept on one device; shuffling and augmentation happen there too.

    Each epoch's order, crops and flips come from a generator seeded by (seed, epoch), so an epoch is
    the same whether training ran straight through or resumed from a checkpoint. The loader is
    stateful for Lightning (`state_dict`: the epoch and the batches it has handed out), so a resume
    from a checkpoint saved mid-epoch (Ctrl-C) carries on with the epoch's next batch.

    Args:
        x: uint8 images `(N, C, H, W)`, already on the target device.
        y: labels `(N,)`.
        mean, std: per-channel normalisation, in 0..255 units.
        batch_size: images per batch.
        shuffle: new order each epoch.
        pad: pad-and-random-crop margin in pixels (0: none).
        flip: random horizontal flips.
        drop_last: drop the last incomplete batch.
        seed: base seed of the epoch generators.
        rank, world_size: under DDP each rank takes every world_size-th image of the epoch's order.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        pad: int = 0,
        flip: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(x) == 0:
            raise ValueError("DeviceLoader got an empty split")
        self.x, self.y = x, y
        self.mean = mean.to(x.device, torch.float32).view(1, -1, 1, 1)
        self.std = std.to(x.device, torch.float32).view(1, -1, 1, 1)
        self.batch_size, self.shuffle, self.pad, self.flip = batch_size, shuffle, pad, flip
        self.drop_last, self.seed, self.epoch = drop_last, seed, 0
        self.rank, self.world_size = rank, world_size
        self.served = 0  # batches of this epoch handed out so far
        self._skip: dict[str, int] | None = None  # where a restored epoch resumes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """Where the epoch stands: plain ints, stored in Lightning's checkpoint."""
        return {"epoch": self.epoch, "served": self.served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """The next iteration of epoch `state["epoch"]` starts after its `served` batches.

        The epoch is restored too: Lightning does not call `on_train_epoch_start` (which sets it)
        again for an epoch resumed in its middle."""
        self.epoch = int(state["epoch"])
        self._skip = {"epoch": self.epoch, "served": int(state["served"])}

    def __len__(self) -> int:
        n = len(self.x) // self.world_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n, dev = len(self.x), self.x.device
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        shifts = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=g) if self.pad else None
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else None
        # every rank draws the same epoch, then keeps its share (equal sizes, so DDP stays in step)
        share = slice(self.rank, n - n % self.world_size, self.world_size)
        order = order[share].to(dev)
        shifts = shifts[share] if shifts is not None else None
        flips = flips[share] if flips is not None else None
        shifts = shifts.to(dev) if shifts is not None else None
        flips = flips.to(dev) if flips is not None else None
        skip, self._skip = self._skip, None
        start = skip["served"] if skip and skip["epoch"] == self.epoch else 0
        self.served = start
        for b in range(start, len(self)):
            self.served = b + 1
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = order[sl]
            x = self.x[idx].float()
            if shifts is not None:
                x = self._crop(x, shifts[sl])
            if flips is not None:
                x = torch.where(flips[sl].view(-1, 1, 1, 1), x.flip(3), x)
            yield (x - self.mean) / self.std, self.y[idx]

    def _crop(self, x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Pads by `pad` with zeros (after normalisation: the mean colour) and crops back at random."""
        B, C, H, W = x.shape
        p = self.pad
        xp = torch.nn.functional.pad(x - self.mean, (p, p, p, p)) + self.mean
        rows = (torch.arange(H, device=x.device).view(1, H) + shifts[:, :1]).view(B, 1, H, 1)
        cols = (torch.arange(W, device=x.device).view(1, W) + shifts[:, 1:]).view(B, 1, 1, W)
        b = torch.arange(B, device=x.device).view(B, 1, 1, 1)
        c = torch.arange(C, device=x.device).view(1, C, 1, 1)
        return xp[b, c, rows, cols]


class NASDataModule(pl.LightningDataModule):
    """Splits the training set into the part that trains the supernet and a held-out part that ranks
    subnets; the test set is kept for standalone retraining.

    Args:
        name: `digits` or `cifar10`.
        num_classes: expected class count (checked against the data).
        input_shape: expected `(C, H, W)` of one image (checked against the data).
        root: folder of the CIFAR-10 files (see `load_cifar10`).
        download: fetch torchvision's CIFAR-10 layout into `root` if missing.
        heldout_fraction: share of the training set held out to rank subnets.
        batch_size: supernet training batch.
        eval_batch_size: batch for evaluation.
        val_images: held-out images used by the per-epoch validation of reference archs (0: all).
        pad, flip: training augmentation.
        limit_train: keep only this many training images (0: all); for tiny tests.
        resolution: images larger than `resolution` pixels a side are area-averaged down to it
            once, after loading (0: as stored). A proxy task: cheaper steps for the supernet and
            its evaluation. The zero-shot and retrain stages ignore it: retraining measures the
            real task, and the zero-shot proxies score the stored images
            (at 16x16 MeCo ranked 600 random NB201 classes at Kendall 0.657 against 0.685 at
            32x32; BENCHMARKS.md). The costs the stages report stay those of `input_shape`.
        seed: split and shuffle seed.
        folds, fold: with `folds` >= 2, the test split is fold `fold` of a `folds`-fold
            cross-validation over every image (`cross_fold`), the training set the rest; 0: the
            data's own test split. `scripts/retrain.py folds=K` sets them, one network per fold.
        device: where the data live: `auto` (the trainer's device, else CPU), `cpu`, `cuda`.
    """

    def __init__(
        self,
        name: str = "digits",
        num_classes: int | None = None,
        input_shape: tuple[int, int, int] | None = None,
        root: str | None = None,
        download: bool = False,
        heldout_fraction: float = 0.5,
        batch_size: int = 256,
        eval_batch_size: int = 1000,
        val_images: int = 0,
        pad: int = 0,
        flip: bool = False,
        limit_train: int = 0,
        resolution: int = 0,
        seed: int = 0,
        device: str = "auto",
        folds: int = 0,
        fold: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < heldout_fraction < 1.0:
            raise DataError(
                f"data.heldout_fraction={heldout_fraction} must lie strictly in (0, 1)"
            )
        batch_size = check_count("data.batch_size", batch_size, 1)
        eval_batch_size = check_count("data.eval_batch_size", eval_batch_size, 1)
        val_images = check_count("data.val_images", val_images, 0, "0: the whole held-out split")
        limit_train = check_count("data.limit_train", limit_train, 0, "0: every training image")
        pad = check_count("data.pad", pad, 0)
        self.resolution = check_count("data.resolution", resolution, 0, "0: as stored")
        self.name, self.root, self.download = name, root, download
        self.expected = {
            "num_classes": num_classes,
            "input_shape": tuple(input_shape) if input_shape else None,
        }
        self.heldout_fraction, self.batch_size, self.eval_batch_size = (
            heldout_fraction,
            batch_size,
            eval_batch_size,
        )
        self.val_images, self.pad, self.flip = val_images, pad, flip
        self.limit_train, self.seed, self.device = limit_train, seed, device
        self.folds, self.fold = check_folds(folds, fold)
        self.arrays: Arrays | None = None

    @property
    def num_classes(self) -> int:
        return self._arrays().num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self._arrays().input_shape

    def _arrays(self) -> Arrays:
        if self.arrays is None:
            a = load_arrays(self.name, self.root, self.download)
            if self.folds:
                a = cross_fold(a, self.folds, self.fold)
            found = {"num_classes": a.num_classes, "input_shape": a.input_shape}
            for key, want in self.expected.items():
                if want is not None and found[key] != want:
                    raise ValueError(
                        f"data {self.name}: config says {key}={want}, the data have {found[key]}"
                    )
            r, (_, h, w) = self.resolution, a.input_shape
            if r and max(h, w) > r:  # a cap: smaller images (digits' 8x8) stay as they are
                size = (min(h, r), min(w, r))
                a = replace(
                    a, x_train=downsample(a.x_train, size), x_test=downsample(a.x_test, size)
                )
            self.arrays = a
        return self.arrays

    def _device(self) -> torch.device:
        if self.device != "auto":
            return torch.device(self.device)
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def setup(self, stage: str | None = None) -> None:
        a = self._arrays()
        x, y = a.x_train, a.y_train
        if self.limit_train:
            x, y = x[: self.limit_train], y[: self.limit_train]
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))
        n_held = int(round(len(y) * self.heldout_fraction))
        held, train = perm[:n_held], perm[n_held:]
        dev = self._device()
        self.splits = {
            "train": (x[train].to(dev), y[train].to(dev)),
            "heldout": (x[held].to(dev), y[held].to(dev)),
            "test": (a.x_test.to(dev), a.y_test.to(dev)),
        }
        xf = x[train].float()
        self.mean = xf.mean(dim=(0, 2, 3))
        self.std = xf.std(dim=(0, 2, 3)).clamp_min(1.0)

    def loader(
        self, split: str, train: bool = False, limit: int = 0, distributed: bool = False
    ) -> DeviceLoader:
        """A loader over `train`, `heldout` or `test`; `train=True` shuffles and augments;
        `distributed` shards it over the trainer's ranks."""
        if not hasattr(self, "splits"):
            self.setup()
        x, y = self.splits[split]
        if limit:
            x, y = x[:limit], y[:limit]
        trainer = getattr(self, "trainer", None)
        rank, world = (
            (trainer.global_rank, trainer.world_size) if distributed and trainer else (0, 1)
        )
        if not train:
            return DeviceLoader(
                x, y, self.mean, self.std, self.eval_batch_size, rank=rank, world_size=world
            )
        return DeviceLoader(
            x,
            y,
            self.mean,
            self.std,
            self.batch_size,
            shuffle=True,
            pad=self.pad,
            flip=self.flip,
            drop_last=len(x) // world > self.batch_size,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )

    def train_dataloader(self) -> DeviceLoader:
        return self.loader("train", train=True, distributed=True)

    def val_dataloader(self) -> DeviceLoader:
        return self.loader("heldout", limit=self.val_images, distributed=True)

    def test_dataloader(self) -> DeviceLoader:
        return self.loader("test", distributed=True)
