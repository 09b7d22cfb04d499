"""The tokenizer half, family-agnostic: the merge job and its checks, report and settings, and the one
tokenizer loader the model side uses. Family-specific steps live in :mod:`vocab_extend.families`."""
