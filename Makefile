# Everything a fresh machine needs is installed by these targets into .venv/.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: install test demo bench generate check-generated typecheck clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m kling_i2v.demo

bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/bench_account_limit.py

generate:
	./generate.sh

check-generated:
	./generate.sh --check

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict overlays generated_client

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache
