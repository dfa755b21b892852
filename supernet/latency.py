"""Latency lookup tables: per layer and op, measured on the running machine, summed per arch.

A table holds the median time of every candidate block at its own input shape, plus the fixed part
of the network (stem, head, classifier), measured after a warm-up on this device. An arch's latency is
the fixed part plus its blocks; `check_table` compares that sum with whole standalone networks.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from supernet.chain_model import InvertedResidual
from supernet.chain_space import parse_op
from supernet.space import Arch, SearchSpace
from supernet.utils import atomic_write_json


@dataclass
class LatencyTable:
    """Milliseconds per forward pass of `batch_size` images of `input_shape` on `device`.

    An arch's latency is `scale * (fixed_ms + its ops' ms)`: the raw sum, corrected by a factor
    fitted to whole networks measured on the same device (`calibrate`; 1 until then).
    """

    space: str
    device: str
    batch_size: int
    input_shape: list[int]
    fixed_ms: float
    op_ms: list[dict[str, float]]  # one dict per layer: op name -> ms (`skip`: 0)
    scale: float = 1.0

    def latency_ms(self, ops: Sequence[str], calibrated: bool = True) -> float:
        """The table's latency for an arch given by its op names, one per layer (`calibrated=False`:
        the raw sum of the measured parts)."""
        if len(ops) != len(self.op_ms):
            raise ValueError(f"arch has {len(ops)} layers, the latency table {len(self.op_ms)}")
        raw = self.fixed_ms + sum(layer[op] for layer, op in zip(self.op_ms, ops))
        return self.scale * raw if calibrated else raw

    def arch_ms(self, space: SearchSpace, arch: Arch) -> float:
        """`latency_ms` of an arch of `space` given by its op indices."""
        return self.latency_ms([space.ops[a] for a in arch])

    def calibrate(self, archs_ops: Sequence[Sequence[str]], measured_ms: Sequence[float]) -> None:
        """Sets `scale` to the least-squares factor from the raw sums of `archs_ops` to their
        measured whole-network latencies.

        The raw sum misses what only a whole network pays, such as the traffic between blocks; one
        factor fitted on a few whole networks removes most of that bias. (A line with an offset
        fitted no better on held-out networks and was less stable under load: BENCHMARKS.md.)
        """
        raw = np.array([self.latency_ms(ops, calibrated=False) for ops in archs_ops])
        ms = np.asarray(measured_ms, dtype=float)
        if len(raw) != len(ms) or len(ms) == 0:
            raise ValueError(
                f"calibrate needs one measurement per arch; got {len(raw)}, {len(ms)}"
            )
        self.scale = float(raw @ ms / (raw @ raw))

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"latency table {path} does not exist")
        return cls(**json.loads(path.read_text()))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    """Waits for the device's queued work (CUDA); nothing elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_times(
    fns: Sequence[Callable[[], object]], device: torch.device, warmup: int, repeats: int
) -> list[list[float]]:
    """Wall seconds of each call of each of `fns`: `warmup` untimed calls of each, then `repeats`
    rounds that call every fn once, synchronising CUDA around each timed call.

    With several fns the calls interleave (A, B, ... in one round), so a change of machine load
    falls on every fn alike; every other round runs them in reverse order (B, A), so no fn always
    follows the same one.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            sync(device)
            t = time.perf_counter()
            fns[i]()
            sync(device)
            times[i].append(time.perf_counter() - t)
    return times


def median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of `fn` in ms over `repeats` calls after `warmup` calls (`wall_times`)."""
    return 1e3 * statistics.median(wall_times([fn], device, warmup, repeats)[0])


@torch.no_grad()
def measure_table(
    net: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 20,
) -> LatencyTable:
    """Times every op of every layer of a chain supernet at its layer's input shape, each as the
    standalone block a retrained network would hold (not a slice of the supernet's entangled
    weights), and the stem + head + classifier, in eval mode on the net's device."""
    device = next(net.parameters()).device
    net.eval()
    x = torch.randn(batch_size, *input_shape, device=device)
    h = net.stem(x)
    fixed = median_ms(lambda: net.stem(x), device, warmup, repeats)
    op_ms: list[dict[str, float]] = []
    for layer in net.space.chain:
        times = {"skip": 0.0}
        for op in net.space.ops[: net.space.skip]:
            block = InvertedResidual(
                layer.c_in, layer.c_out, *parse_op(op), layer.stride, True, True
            )
            block = block.to(device).eval()
            times[op] = median_ms(lambda b=block, h=h: b(h), device, warmup, repeats)
        op_ms.append(times)
        h = block(h)  # every op of a layer gives the same output shape

    def head() -> torch.Tensor:
        return net.classifier(net.head_relu(net.head(h)).mean(dim=(2, 3)))

    fixed += median_ms(head, device, warmup, repeats)
    return LatencyTable(
        net.space.name, device_name(device), batch_size, list(input_shape), fixed, op_ms
    )


@torch.no_grad()
def measure_network(
    net: nn.Module,
    arch: Arch,
    input_shape: Sequence[int],
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 20,
) -> float:
    """Median ms of one whole forward pass of `net` (eval mode) on `arch`."""
    device = next(net.parameters()).device
    net.eval()
    x = torch.randn(batch_size, *input_shape, device=device)
    return median_ms(lambda: net(x, arch), device, warmup, repeats)
