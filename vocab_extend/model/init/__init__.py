"""New embedding rows for an extended tokenizer (``init-model``): :mod:`.embeddings` resizes a model and
initialises the rows past the base with one of the methods, :mod:`.distill` is token distillation, and
:mod:`.cli` is the subcommand."""
