# Two entry points do all the set-up on a fresh machine (see README):
#   make repro   install into .venv, then run the whole DVC pipeline on the embedded default
#   make test    install into .venv, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install repro test test-all lint bench app clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# tinysoundfont declares pyaudio (live playback only; needs PortAudio headers): skip it
	$(PY) -m pip install -q --no-deps tinysoundfont==0.3.7
	$(PY) -m pip install -q --no-deps -e .
	touch $@

repro: install
	dvc repro

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test-all: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m ""

lint: install
	$(VENV)/bin/ruff check src stages tests benchmarks
	$(VENV)/bin/ruff format --check src stages tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/bench_degrade.py
	$(PY) benchmarks/bench_variants.py

app: install
	$(PY) -m musicrestore app --params params.yaml

clean-venv:
	rm -rf $(VENV)
