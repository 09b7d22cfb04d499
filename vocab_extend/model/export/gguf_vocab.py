"""The tokenizer half of a GGUF file: what llama.cpp needs to tokenize exactly like the HF folder.

The family of the folder's tokenizer states its vocabulary (:meth:`~vocab_extend.families.interface.Family.
gguf_vocab`: tokens, types, scores or merges, llama.cpp's tokenizer model and pre-tokenizer name); this module
adds what the Hugging Face tokenizer applies (special ids, add-BOS/EOS, the chat template) and pads it to the
embedding, then writes it.

Invariant: the vocabulary has exactly as many entries as the embedding has rows. Rows past the tokenizer
(padding to a multiple of 64, say) get placeholder names ``[PAD<id>]`` and the type UNUSED, which is what
llama.cpp expects and what keeps it from refusing the file for a size mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from gguf import GGUFWriter, TokenType

from ...errors import VocabExtendError
from ...families import not_claimed
from ...families.interface import TokenizerVocab
from ...tokenizer.folder import TokenizerFolder


@dataclass
class GGUFVocab(TokenizerVocab):
    """Everything ``tokenizer.*`` in a GGUF file holds: the family's vocabulary and the HF folder's settings."""

    special: dict[str, int] = field(default_factory=dict)  # bos/eos/unk/pad -> id
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | None = None
    padding: int = 0  # placeholder rows past the tokenizer

    def write(self, writer: GGUFWriter) -> None:
        writer.add_tokenizer_model(self.model)
        if self.pre:
            writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        if self.merges:
            writer.add_token_merges(self.merges)
        setters = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
                   "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id}
        for name, token_id in self.special.items():
            setters[name](token_id)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def _tokenizer_folder(folder: Path) -> TokenizerFolder:
    found = TokenizerFolder.find(folder)
    if found is None:
        raise not_claimed(f"the tokenizer of {folder}")
    return found


def read_vocab(folder: Path, rows: int, *, pre: str | None = None) -> GGUFVocab:
    """The GGUF vocabulary of the tokenizer in ``folder``, padded with UNUSED placeholders to ``rows``."""
    tokenizer = _tokenizer_folder(Path(folder))
    base = tokenizer.metadata.base if tokenizer.metadata is not None else ""
    stated = tokenizer.family.gguf_vocab(tokenizer.path, pre=pre, base=base)
    vocab = GGUFVocab(**{f.name: getattr(stated, f.name) for f in fields(TokenizerVocab)})
    if len(vocab.tokens) > rows:
        raise VocabExtendError(
            f"the tokenizer in {folder} has {len(vocab.tokens):,} tokens but the model only {rows:,} embedding "
            "rows: resize the model with `vocab-extend init-model`"
        )
    vocab.padding = rows - len(vocab.tokens)
    for token_id in range(len(vocab.tokens), rows):
        vocab.tokens.append(f"[PAD{token_id}]")
        vocab.types.append(TokenType.UNUSED)
        if vocab.scores is not None:
            vocab.scores.append(-1000.0)
    _special_settings(tokenizer, vocab)
    return vocab


def _special_settings(folder: TokenizerFolder, vocab: GGUFVocab) -> None:
    """Special ids, add-BOS/EOS and the chat template, as the HF tokenizer of ``folder`` applies them."""
    try:
        tokenizer = folder.load()
    except Exception as exc:  # noqa: BLE001 - any loader failure is a damaged folder
        raise VocabExtendError(f"the tokenizer in {folder.path} does not load ({exc})") from None
    for name in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id")
        if token_id is not None:
            vocab.special[name] = int(token_id)
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    bos, eos = vocab.special.get("bos"), vocab.special.get("eos")
    vocab.add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    vocab.add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    template = tokenizer.chat_template
    vocab.chat_template = template if isinstance(template, str) else None
