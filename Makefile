# Every target uses the virtual environment at .venv, created by `make setup`.
PY := .venv/bin/python
STAMP := .venv/.ddsweep-installed
export OMP_NUM_THREADS ?= 2
export WANDB_SILENT ?= true

.PHONY: setup demo test test-slow bench gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m pip --version >/dev/null 2>&1 || python3 -m venv --clear .venv  # a half-made venv is made again
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(PY) -m ddsweep sweep sweeps/demo.yaml --local --workers 2 --output runs/demo
	$(PY) -m ddsweep report runs/demo

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) bench/bench_sweep.py

# Acceptance of the GPU path on one CUDA GPU (H100/H200), at most 8 minutes: gpu-marked tests, the ResNet18-k
# bench, the measurement bench and a 2-epoch smoke run of each CIFAR preset; last line one JSON object.
gpu-check: setup
	$(PY) bench/gpu_check.py

clean:
	rm -rf runs reports
