# The README's two commands: `make run` (set up, then the main job on the bundled digits data) and
# `make test` (set up, then the test suite). Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup lint clean carry

# pip compiles every .py it installs to bytecode on one core: about 55 of the 90 s of set-up on 2
# cores. It installs with --no-compile; compileall then does the same work on every core (set-up
# 96 -> 86 s). A file that does not compile, such as torch's one test file in Python 3.12 syntax,
# is left as pip leaves it: hence -qq and make's `-`. Packages' test folders and what no stage or
# test imports (pip, setuptools, networkx: 2,900 of 11,500 files) are skipped.
NOCOMPILE := '/(tests?|testing/_internal)/|/site-packages/(pip|setuptools|pkg_resources|networkx)/'
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip  # Python 3.11's own 23.2 took 10 s longer here
	# CPU wheel on disk; a plain torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q --no-compile torch==2.13.0
	$(BIN)/python -m pip install -q --no-compile -e '.[dev]'
	-$(BIN)/python -m compileall -qq -j 0 -x $(NOCOMPILE) "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf outputs multirun .pytest_cache

# What a lent GPU machine needs beside the tree (git-ignored carry/): hydra's wheels and the shared
# NB201 truth + CIFAR-10 container. Then: device run `bash scripts/device_check.sh` with carry=["carry"].
SHARED ?= ../shared
carry: $(STAMP)
	mkdir -p carry/wheels
	$(BIN)/python -m pip wheel -q --no-deps -w carry/wheels hydra-core==1.3.2 omegaconf==2.3.0 \
		antlr4-python3-runtime==4.9.3
	cp $(SHARED)/data/nb201_cifar10.csv $(SHARED)/data/cifar10_jpeg.npz \
		$(SHARED)/tools/cifar10_from_jpeg.py carry/
