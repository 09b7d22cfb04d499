"""The model half: loading models (:mod:`.loading`), embedding rows for an extended tokenizer
(:mod:`.sizing`, :mod:`.embeddings`, ``init-model`` in :mod:`.init_cli`), and bits per byte (:mod:`.bpb`,
``evaluate-bpb`` in :mod:`.bpb_cli`). It reads merged folders through :mod:`vocab_extend.tokenizer.loader`
and never imports a tokenizer family's internals."""
