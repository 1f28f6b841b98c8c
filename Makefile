# Two commands matter (see README): `make serve` and `make test`. Everything else is a helper.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-dev
HOST    ?= 127.0.0.1
PORT    ?= 8000

.PHONY: setup serve mock test lint typecheck unit openapi clean

# torch is installed first and pinned: on this project's machines the CPU wheel of 2.13.0 lies on disk, and an
# unpinned resolve would pull a multi-GB CUDA build. GPU users can install their own torch first; pip keeps it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

WEIGHTS ?= $(CURDIR)/weights
DATA    ?= $(CURDIR)/data

# The main job on embedded defaults: SQLite + local files under $(DATA), official weights under $(WEIGHTS)
# (downloaded on first run). Where the Hugging Face hub cannot be reached, it says so and falls back to tiny
# RANDOM development weights with the bundled MediaPipe detector, so the API still works end to end
# (outputs are then noise around the mouth, not lip-sync).
serve: $(STAMP)
	@if $(BIN)/lipsync weights verify --dir $(WEIGHTS) --face-models >/dev/null 2>&1; then \
		echo "weights: official LatentSync 1.6 in $(WEIGHTS)"; DETECTOR=insightface; \
	elif $(BIN)/lipsync weights download --dir $(WEIGHTS); then DETECTOR=insightface; \
	else \
		echo "!! hub unreachable: using TINY RANDOM development weights (outputs are not lip-synced)"; \
		$(BIN)/lipsync weights verify --dir $(WEIGHTS)/tiny >/dev/null 2>&1 || $(BIN)/lipsync weights tiny $(WEIGHTS)/tiny; \
		WEIGHTS_USED=$(WEIGHTS)/tiny; DETECTOR=mediapipe; \
	fi; \
	exec $(BIN)/lipsync serve --host $(HOST) --port $(PORT) --data-dir $(DATA) \
		--weights-dir $${WEIGHTS_USED:-$(WEIGHTS)} --face-detector $$DETECTOR

mock: $(STAMP)
	$(BIN)/lipsync mock --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

openapi: $(STAMP)
	$(BIN)/python -m contracts.schema

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

# The playground's screenshots in docs/images, taken by its browser test in the same headless Chromium.
.PHONY: screenshots
screenshots: $(STAMP)
	LIPSYNC_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/pytest tests/web/test_playground_browser.py -k whole_flow
