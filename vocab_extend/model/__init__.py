"""The model half, by purpose: loading models (:mod:`.loading`, :mod:`.sizing`), initialising the rows of
an extended tokenizer (:mod:`.init`, ``init-model``), evaluating models (:mod:`.evaluate`, ``evaluate-bpb``
and decode speed) and exporting them (:mod:`.export`, ``export-gguf``); model cards in :mod:`.card`. It reads
merged folders through :mod:`vocab_extend.tokenizer.loader` and never imports a tokenizer family's internals."""
