# make test : create .venv, install everything, fetch the model, run the whole suite
# make demo : install, fetch the model, run the study's demo workflow (experiments/causal_vs_bidirectional)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR := assets/models/SmolLM2-135M
DATA_DIR ?= ../shared/data/conll2003
PYTEST_ARGS ?=

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
	HF_HUB_OFFLINE=1 CONLL_DIR=$(abspath $(DATA_DIR)) $(PY) -m pytest -q $(PYTEST_ARGS)

demo: model
	HF_HUB_OFFLINE=1 $(PY) -m spacy project run demo experiments/causal_vs_bidirectional --vars.data_dir=$(abspath $(DATA_DIR))

clean:
	rm -rf $(VENV) build *.egg-info
