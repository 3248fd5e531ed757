# Two environments: .venv-rasa (Rasa 3.6 server, its frozen pins) and .venv (everything else).
# `make run` and `make test` do all set-up on a fresh clone.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
RASA_VENV := .venv-rasa
PIP_FLAGS := --disable-pip-version-check -q --prefer-binary
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3

KNOWLEDGE := $(wildcard knowledge/*.yml)
NLU_INPUTS := config.yml domain.yml $(wildcard nlu_data/*.yml) $(wildcard bot/nlu/*.py) bot/japanese.py \
              knowledge/towns.yml knowledge/services.yml
MODEL := models/concierge.tar.gz
INDEX := var/index/manifest.json

.PHONY: install run test train index lint lock clean bench eval browser-deps

install: $(VENV)/.installed $(RASA_VENV)/.installed

$(VENV)/.installed: requirements/app.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements/app.lock
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --ignore-requires-python rasa-sdk==3.6.2
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	touch $@

# Rasa 3.6.21 declares Python <3.11: its dependencies first, pinned, then rasa itself without deps
# (recipe: shared/recipes/rasa-3.6-on-py311).
$(RASA_VENV)/.installed: requirements/rasa-deps.txt requirements/rasa-lock.txt requirements/rasa-extra.txt pyproject.toml
	test -x $(RASA_VENV)/bin/python || $(PY) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install $(PIP_FLAGS) -r requirements/rasa-deps.txt -r requirements/rasa-extra.txt \
	    -c requirements/rasa-lock.txt
	$(RASA_VENV)/bin/pip install $(PIP_FLAGS) --no-deps --ignore-requires-python rasa==3.6.21 rasa-sdk==3.6.2
	$(RASA_VENV)/bin/pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	touch $@

index: $(INDEX)
$(INDEX): $(VENV)/.installed $(KNOWLEDGE)
	$(VENV)/bin/concierge knowledge build

# Retrain only when the pipeline, the domain, the training data or the components changed.
train: $(MODEL)
$(MODEL): $(RASA_VENV)/.installed $(VENV)/.installed $(NLU_INPUTS)
	$(VENV)/bin/concierge knowledge export-nlu
	$(RASA_VENV)/bin/rasa train --config config.yml --domain domain.yml --data nlu_data \
	    --out models --fixed-model-name concierge
	touch $@

run: install $(INDEX) $(MODEL)
	$(VENV)/bin/concierge run

# The browser tests use Debian's Chromium and ChromeDriver, and Japanese fonts (no browser downloads).
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list | grep -q "Noto Sans CJK" \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	         chromium chromium-driver fonts-noto-cjk >/dev/null; }

test: install browser-deps $(INDEX) $(MODEL)
	$(VENV)/bin/ruff check bot actions web tests bench
	$(VENV)/bin/pytest

# Figures, not tests: retrieval quality on LocalgovFAQ (test split) and speed on this machine.
LOCALGOVFAQ ?= ../shared/benchmarks/localgovfaq
bench: install $(INDEX)
	$(VENV)/bin/python bench/kawasaki_retrieval.py
	$(VENV)/bin/python bench/localgovfaq.py --data $(LOCALGOVFAQ) --split test --json var/bench/localgovfaq.json
	$(VENV)/bin/python -c 'import json,sys; s=json.load(open("$(LOCALGOVFAQ)/split.json")); \
	    q=json.load(open("$(LOCALGOVFAQ)/queries.json")); json.dump({k: q[k] for k in s["test"]}, \
	    open("var/bench/test_queries.json", "w"), ensure_ascii=False)'
	$(VENV)/bin/concierge retrieve --faq-json $(LOCALGOVFAQ)/corpus.json \
	    --queries var/bench/test_queries.json --top-k 10 > var/bench/localgovfaq_hits.jsonl
	$(VENV)/bin/python bench/localgovfaq.py --data $(LOCALGOVFAQ) --split test --hits var/bench/localgovfaq_hits.jsonl

eval: install $(INDEX)
	$(VENV)/bin/concierge eval tests/dev/kawasaki_dev.jsonl

lint:
	$(VENV)/bin/ruff check bot actions web tests bench

lock:
	$(VENV)/bin/pip freeze | grep -viE '^(-e|kawasaki-concierge|rasa-sdk)' > requirements/app.lock.new
	mv requirements/app.lock.new requirements/app.lock

clean:
	rm -rf var models nlu_data/generated
