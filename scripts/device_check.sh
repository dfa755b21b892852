#!/usr/bin/env bash
# One prepared run for a lent GPU machine (see BENCHMARKS.md for what is still open there).
# Prepare here with `make carry`, then run it through the device tool with carry=["carry"]:
#   bash scripts/device_check.sh [speed|zeroshot|nb201|all]
# Logs and JSON results go to $OUT (the tool brings back 8 files: this writes at most 8 there). The machine has torch, Lightning and
# torch-geometric but not hydra-core / omegaconf: their wheels travel in carry/wheels.
set -euo pipefail
OUT=${OUT:-outputs/device}
mkdir -p "$OUT" data
what=${1:-all}
python3 -m pip install -q --no-deps carry/wheels/*.whl
# the project itself (its configs travel inside it as nas_conf), without fetching build tools
python3 -m pip install -q --no-deps --no-build-isolation -e .
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else \"no GPU\")" | tee "$OUT/device.txt"
[ -f data/cifar10/train.npz ] || python3 carry/cifar10_from_jpeg.py carry/cifar10_jpeg.npz data/cifar10
truth="truth=$PWD/carry/nb201_cifar10.csv"
if [[ $what == speed || $what == all ]]; then
  python3 scripts/benchmark_speed.py "out=$OUT/benchmark_speed.json" 2>&1 | tee "$OUT/speed.log"
fi
if [[ $what == zeroshot || $what == all ]]; then
  python3 scripts/benchmark_zeroshot.py n=15625 "seeds=[0]" "proxies=[wrcor]" "$truth" \
    data_root=data/cifar10 "out=$OUT/zeroshot.json" 2>&1 | tee "$OUT/zeroshot.log"
fi
if [[ $what == nb201 || $what == all ]]; then
  python3 scripts/benchmark_nb201.py experiment=nb201_cifar10_gpu "$truth" \
    container=carry/cifar10_jpeg.npz data.root=data/cifar10 hydra.run.dir=outputs/device_nb201 \
    ${NB201_ARGS:-} 2>&1 | tee "$OUT/nb201.log"
  cp outputs/device_nb201/benchmark_nb201.json outputs/device_nb201/benchmark_nb201.md "$OUT/"
fi
