"""New embedding rows for an extended tokenizer (``init-model``): :mod:`.embeddings` resizes a model and writes
the rows past the base, :mod:`.methods` is the registry of init methods (``METHODS``: one function and one
line per method), :mod:`.distill` is token distillation (the ``distill`` method's refinement), :mod:`.config`
holds the method names and :class:`~.config.InitConfig` (light to import), :mod:`.job` loads, resizes and
saves, and :mod:`.cli` is the subcommand."""
