# The two set-up commands of the README: `make train` and `make test`.
# Each creates .venv (once) and installs what it needs; reruns reinstall only when
# pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hf-gem-installed
OUTPUT_DIR ?= runs/gpt2-default
# Two test workers by default (CI has 2 cores); `make test WORKERS=0` runs in one process.
WORKERS ?= 2

.PHONY: install train test benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import torch, torchvision, timm, transformers.models.gpt2; print('installed torch', torch.__version__)"
	touch $(STAMP)

train: install
	$(VENV)/bin/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no \
		--dynamo_backend no recipes/gpt2_pretrain.py --output_dir $(OUTPUT_DIR)
	@echo "Model, tokenizer and metrics.jsonl are in $(OUTPUT_DIR)"

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(WORKERS) tests

benchmark: install
	$(PY) benchmarks/activations.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
