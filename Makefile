# Two commands matter (see README): `make serve` and `make test`. Everything else is a helper.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-dev
HOST    ?= 127.0.0.1
PORT    ?= 8000

.PHONY: setup serve mock test lint layers typecheck unit openapi clean gpu-wheels

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
# Hosts/IPs/CIDRs the server may fetch input URLs from although private or loopback (development only),
# e.g. `make serve FETCH_ALLOW=127.0.0.1` to submit URLs of a local file server.
FETCH_ALLOW ?=
# A failed hub probe is remembered for a day, so restarts without network skip ~30 s of retries.
HUB_OFFLINE := $(WEIGHTS)/.hub-unreachable

# The main job on embedded defaults: SQLite + local files under $(DATA), official weights under $(WEIGHTS)
# (downloaded on first run). Where the Hugging Face hub cannot be reached, it says so and falls back to tiny
# RANDOM development weights with the bundled MediaPipe detector, so the API still works end to end
# (outputs are then noise around the mouth, not lip-sync).
serve: $(STAMP)
	@if $(BIN)/lipsync weights verify --dir $(WEIGHTS) --face-models >/dev/null 2>&1; then \
		echo "weights: official LatentSync 1.6 in $(WEIGHTS)"; DETECTOR=insightface; \
	elif [ -n "$$(find $(HUB_OFFLINE) -mmin -1440 2>/dev/null)" ]; then \
		echo "weights: the hub was unreachable at $$(cat $(HUB_OFFLINE)); not retrying today (rm $(HUB_OFFLINE) to retry)"; \
		DETECTOR=; \
	elif $(BIN)/lipsync weights download --dir $(WEIGHTS); then DETECTOR=insightface; \
	else \
		mkdir -p $(WEIGHTS); date -u '+%Y-%m-%d %H:%M UTC' > $(HUB_OFFLINE); DETECTOR=; \
	fi; \
	if [ -z "$$DETECTOR" ]; then \
		echo "!! using TINY RANDOM development weights: outputs are not lip-synced, and on a CPU a job takes"; \
		echo "!! minutes (the server logs the estimate per job; README: 'How long does it take')"; \
		$(BIN)/lipsync weights verify --dir $(WEIGHTS)/tiny >/dev/null 2>&1 || $(BIN)/lipsync weights tiny $(WEIGHTS)/tiny; \
		WEIGHTS_USED=$(WEIGHTS)/tiny; DETECTOR=mediapipe; \
	fi; \
	exec $(BIN)/lipsync serve --host $(HOST) --port $(PORT) --data-dir $(DATA) \
		--weights-dir $${WEIGHTS_USED:-$(WEIGHTS)} --face-detector $$DETECTOR \
		$(foreach a,$(FETCH_ALLOW),--fetch-allow $(a))

mock: $(STAMP)
	$(BIN)/lipsync mock --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The import layers of docs/ARCHITECTURE (contracts in pyproject.toml [tool.importlinter]).
layers: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint layers typecheck unit

openapi: $(STAMP)
	$(BIN)/python -m contracts.schema
	$(BIN)/python -m mock_server.openapi

# For a lent GPU machine (no network): the wheels of bench/gpu-wheels.txt as cp312 manylinux x86_64 wheels, and
# the demo clip + flops.json (../shared does not travel), into the ignored .whl/; then the sizes against the
# 64 MiB that travel. Run the benchmark there with bench/gpu.sh and carry [".whl"] (docs/throughput.md).
GPU_WHEELS ?= .whl
SHARED     ?= $(or $(LIPSYNC_SHARED_DIR),$(CURDIR)/../shared)
PIP_PY     ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY))
gpu-wheels:
	rm -rf $(GPU_WHEELS)
	mkdir -p $(GPU_WHEELS)/shared/media $(GPU_WHEELS)/shared/reference/fixtures
	$(PIP_PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d $(GPU_WHEELS) -r bench/gpu-wheels.txt
	cp $(SHARED)/media/demo1_video.mp4 $(SHARED)/media/demo1_audio.wav $(GPU_WHEELS)/shared/media/
	cp $(SHARED)/reference/fixtures/flops.json $(GPU_WHEELS)/shared/reference/fixtures/
	$(PIP_PY) -m bench.gpu_bundle $(GPU_WHEELS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

# The playground's screenshots in docs/images, taken by its browser test in the same headless Chromium.
.PHONY: screenshots
screenshots: $(STAMP)
	LIPSYNC_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/pytest tests/web/test_playground_browser.py -k whole_flow
