"""vocab-extend: teach an existing LLM a new language by extending its tokenizer and embeddings.

Where things live (``docs/architecture.md`` has the whole map):

- foundation: :mod:`errors`, :mod:`console`, :mod:`staging`, :mod:`scripts` (language script sets),
  :mod:`corpus`, :mod:`sources` (the one spec resolver), :mod:`settings`, :mod:`metadata`, :mod:`plots`;
- :mod:`families`: one folder per tokenizer family (``sentencepiece``, ``bytelevel``), the same face each;
- :mod:`tokenizer`: the merge job over any family (train → merge → write → verify → report), the checks,
  the one tokenizer loader, ``measure``;
- :mod:`model`: model loading, embedding sizing and initialisation, bits per byte;
- :mod:`pretrain`: continued pretraining;
- :mod:`cli`: ``vocab-extend <subcommand>``.
"""

__version__ = "0.1.0"
