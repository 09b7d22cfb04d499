"""vocab-extend: teach an existing LLM a new language by extending its tokenizer and embeddings.

Pipeline modules, in order: :mod:`corpus` → :mod:`train` → :mod:`merge` (SentencePiece) or
:mod:`bytelevel` (byte-level BPE) → :mod:`export` → :mod:`verify` → :mod:`measure` → :mod:`embeddings`
→ :mod:`pretrain`. The command line is :mod:`vocab_extend.cli` (``vocab-extend <subcommand>``).
"""

__version__ = "0.1.0"
