"""Exporting models: a GGUF file for llama.cpp (:mod:`.gguf`, ``export-gguf`` in :mod:`.cli`), with the
tokenizer half in :mod:`.gguf_vocab`."""
