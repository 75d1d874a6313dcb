# The front door. `make run` sets everything up and starts the assistant; `make test` sets up and runs all tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

APP_VENV ?= $(or $(ASSISTANT_APP_VENV),.venv)
RASA_VENV ?= $(or $(ASSISTANT_RASA_VENV),.venv-rasa)
MODEL_DIR ?= $(or $(ASSISTANT_MODEL_DIR),models)
export ASSISTANT_APP_VENV := $(APP_VENV)
export ASSISTANT_RASA_VENV := $(RASA_VENV)
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 2

PY := $(APP_VENV)/bin/python
# The Rasa model is named after everything that shapes it, so it is trained only when one of those changes.
RASA_INPUTS := config.yml domain.yml requirements/rasa.lock $(shell find data -name '*.yml' | sort)
MODEL := $(MODEL_DIR)/$(shell cat $(RASA_INPUTS) | sha256sum | cut -c1-16).tar.gz
export ASSISTANT_RASA_MODEL := $(abspath $(MODEL))

.PHONY: help setup setup-browser model index run test test-fast eval bench mutation lint clean

help: ## Show the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Create/update both Python environments (idempotent)
	@scripts/setup.sh

model: setup ## Train the Rasa model if the training data changed
	@if [ -f "$(MODEL)" ]; then echo "Rasa model up to date: $(MODEL)"; else \
	  echo "Training the Rasa model (a minute or two)..."; \
	  PYTHONWARNINGS=ignore $(RASA_VENV)/bin/python scripts/rasa_server.py train --fixed-model-name $(basename $(basename $(notdir $(MODEL)))) --out $(MODEL_DIR) --quiet; fi

index: setup ## Build a new knowledge index version now (the app also builds one on start when the articles changed)
	@$(PY) -m knowledge build

run: setup model ## Set up everything and start the assistant on http://127.0.0.1:8000
	@$(PY) -m bot.launcher --model $(MODEL)

setup-browser: ## Also install Debian's chromium and the npm test tools for the browser tests
	@scripts/setup.sh --browser

test: setup-browser model ## Set up, lint and run every test (unit, actions, Rasa, end to end, browser)
	@$(PY) -m ruff check --quiet .
	@$(PY) -m pytest

test-fast: setup ## The tests that need neither Rasa nor the running product (they still load the embedding model)
	@$(PY) -m pytest -m "not e2e and not rasa"

eval: setup model ## Measure triage and answers: held-out half first, then ../shared/eval/dev; exit 1 on a missed target
	@$(PY) -m scripts.evaluate $(ARGS)

bench: setup model ## Measure throughput and latency
	@$(PY) -m scripts.bench $(ARGS)

mutation: setup ## Mutation testing of the safety-critical code, then its score per module (hours on 2 cores; ARGS="'safety.engine*'" for one module)
	@$(PY) -m mutmut run --max-children 2 $(ARGS) || true
	@$(PY) -m scripts.mutation_report

lint: setup ## Ruff lint
	@$(PY) -m ruff check .

clean: ## Remove generated files (environments stay)
	rm -rf var models results .pytest_cache
