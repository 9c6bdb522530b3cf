# make test : create .venv, install everything, fetch the model, run the whole suite
# make demo : install, fetch the model, run the study's demo workflow (experiments/causal_vs_bidirectional)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR := assets/models/SmolLM2-135M
DATA_DIR ?= ../shared/data/conll2003
PYTEST_ARGS ?=
# Tests run in two processes (pytest-xdist), a test file to each in the order conftest.py
# gives (the longest first), torch on one thread in each:
# run one at a time they kept 2 cores only 118% busy (imports, spaCy's Python, subprocesses)
TEST_WORKERS ?= 2

.PHONY: venv model test demo clean

$(VENV)/.installed: setup.cfg constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build (a bare `torch` requirement would fetch CUDA wheels)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test,project,ray]"
	touch $@

venv: $(VENV)/.installed

$(MODEL_DIR)/model.safetensors: | $(VENV)/.installed
	$(PY) scripts/fetch_smollm2.py $(MODEL_DIR)

model: venv $(MODEL_DIR)/model.safetensors

test: model
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 CONLL_DIR=$(abspath $(DATA_DIR)) \
		$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

demo: model
	HF_HUB_OFFLINE=1 $(PY) -m spacy project run demo experiments/causal_vs_bidirectional --vars.data_dir=$(abspath $(DATA_DIR))

clean:
	rm -rf $(VENV) build *.egg-info
