# NSP Site Monitor. `make demo` and `make test` set up everything they need (a venv in .venv).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TYPINGS := typings/.installed

.PHONY: setup demo test bench lint typecheck firmware-check screenshots clean

WASM   := firmware/wasm/node_modules/.installed

setup: $(STAMP) $(TYPINGS) $(WASM)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing the project with its test tools"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# ESP32 API stubs for type-checking the firmware (docs/sources.md); not a runtime dependency.
$(TYPINGS): $(STAMP)
	rm -rf typings
	$(PY) -m pip install -q --target typings --no-deps \
	    micropython-esp32-stubs==1.29.0.post1 micropython-stdlib-stubs==1.29.0.post2
	touch $(TYPINGS)

# MicroPython's 32-bit webassembly port, pinned in firmware/wasm/package-lock.json, for the
# firmware's heap test (tests/test_fw_wasm_heap.py). Skipped, with a note, where npm is missing.
$(WASM): firmware/wasm/package-lock.json
	@if command -v npm >/dev/null; then \
	    cd firmware/wasm && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; \
	else echo "==> npm not found: the 32-bit firmware heap test will skip (apt-get install nodejs npm)"; fi

demo: setup
	$(VENV)/bin/nsp-edge demo

test: setup
	$(PY) -m pytest -ra

bench: setup
	$(PY) -m benchmarks

lint: setup
	$(VENV)/bin/ruff check edge_server tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file firmware/mypy.ini firmware

# The pictures in the README and docs/img, taken by the browser tests themselves (tests/shots.py)
# in a real Chromium, so they show what the tests checked.
SHOTS := site-page site-page-gentest hub-board hub-map gentest-report kiosk
screenshots: setup
	rm -rf .shots
	NSP_SCREENSHOTS=.shots $(PY) -m pytest -q tests/test_site_page_v2.py \
	    tests/test_site_page_gentest.py tests/test_hub_gentests.py tests/test_hub_map.py \
	    tests/test_gentest_api.py tests/test_kiosk_page.py
	for s in $(SHOTS); do cp .shots/$$s.png docs/img/$$s.png; done
	rm -rf .shots
	@echo "==> docs/img: $(SHOTS)"

clean:
	rm -rf $(VENV) typings .pytest_cache
