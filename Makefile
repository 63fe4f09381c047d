# cxr: every target that needs the virtualenv depends on `install`, so `make demo` and
# `make test` each work as the only command on a fresh clone.

SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.cxr-installed
TEST_STAMP := $(VENV)/.cxr-test-installed
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint bench bench-learn clean

install: $(STAMP)

# Re-installs only when the project's dependencies or pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev,clinical-metrics,trackers]'
	@touch $(STAMP)

# The suite also reads DeepSpeed ZeRO checkpoints, so `make test` adds the deepspeed extra,
# which a plain install leaves out: once installed, every transformers import loads it
# (seconds, and a warning on machines without a GPU).
$(TEST_STAMP): $(STAMP)
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev,clinical-metrics,trackers,deepspeed]'
	@touch $(TEST_STAMP)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh runs/demo

test: install $(TEST_STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-fast: install $(TEST_STAMP)
	$(PYTHON) -m pytest -m "not slow" $(PYTEST_ARGS)

LINTED := cxr tests benchmarks train.py evaluate.py

lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy cxr

bench: install
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(PYTHON) $$script || exit 1; \
	done

bench-learn: install
	$(PYTHON) benchmarks/learnability.py

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache

# `cxr generate --engine vllm` runs in its own environment: vLLM pins torch and transformers
# versions other than constraints.txt's (see requirements-vllm.txt). For CUDA GPU machines;
# then run `.venv-vllm/bin/cxr generate DICOM_DIR --model DIR -o OUT --engine vllm`.
VLLM_VENV := .venv-vllm
.PHONY: vllm-env

vllm-env: $(VLLM_VENV)/.cxr-installed

$(VLLM_VENV)/.cxr-installed: requirements-vllm.txt pyproject.toml
	@test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet -r requirements-vllm.txt -e .
	@touch $@
