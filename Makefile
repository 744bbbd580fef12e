# Every target installs what it needs into .venv first, so a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint typecheck pytest bench conformance docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[demo,dev]"
	@touch $(STAMP)

# The documentation tools are an extra of their own, so `make test` does not install them.
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	@touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/mcp-authserver demo $(ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks interop
	$(BIN)/ruff format --check src tests examples benchmarks interop

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Third-party clients against the demo (interop/run.sh). Node comes from the npm registry (the lock pins
# Node 22; the machine's npm installs it), the mcp 1.x client from PyPI; both are cached under interop/.
.PHONY: interop
NODE_STAMP := interop/node_modules/.installed
MCP1_VENV  := interop/.venv-mcp1

$(NODE_STAMP): interop/package.json interop/package-lock.json
	@command -v npm >/dev/null || { echo "make interop needs npm (Node.js) to fetch its clients" >&2; exit 1; }
	cd interop && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(MCP1_VENV)/.installed: interop/requirements-mcp1.txt
	@test -x $(MCP1_VENV)/bin/python || $(PYTHON) -m venv $(MCP1_VENV)
	$(MCP1_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	@touch $@

interop: $(STAMP) $(NODE_STAMP) $(MCP1_VENV)/.installed
	$(BIN)/mypy --python-executable $(MCP1_VENV)/bin/python --cache-dir $(MCP1_VENV)/.mypy_cache interop/mcp1_client.py
	INTEROP_PYTHON=$(abspath $(BIN)/python) bash interop/run.sh $(STEPS)

conformance: $(STAMP) $(NODE_STAMP)
	INTEROP_PYTHON=$(abspath $(BIN)/python) bash interop/run.sh conformance

# The site, into site/; strict: a broken link or a docstring warning fails the build. Material for MkDocs
# announces its end of life (May 2027) on every build; the variable keeps that out of the output.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site interop/node_modules $(MCP1_VENV)
