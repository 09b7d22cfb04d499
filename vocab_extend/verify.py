"""End-of-run verification of an extended SentencePiece tokenizer folder.

Every merge ends with these checks on real text (the eval corpora and a sample of the training corpus);
one failure fails the run and nothing is written. Each check reports
``{"passed": bool, "checked": int, "failed": int, "examples": [...]}``:

- ``base_ids_unchanged``: every base piece keeps its id, text, score and type;
- ``base_language_unchanged``: lines with no character of the new scripts tokenize as with the base;
- ``digits_split``: when the base splits digits, no added piece joins a digit to anything;
- ``no_dead_pieces``: every added piece is produced by encoding its own surface;
- ``hf_matches_reference``: ``AutoTokenizer.from_pretrained(folder)`` ids equal SentencePiece ids with BOS;
- ``roundtrip``: ``decode(encode(x)) == x`` with both tokenizers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from .errors import VocabExtendError
from .merge import admissible, dead_pieces, has_digit
from .scripts import ScriptSet

MAX_EXAMPLES = 3
# Base-language lines every verification checks, whatever the eval corpora hold: prose, digits, code and
# the punctuation runs that one-off merges let in.
BASE_LANGUAGE_PROBES = (
    "The quick brown fox jumps over the lazy dog.",
    "In 2007, 3.14159 and 1,234,567 were typed as digits ... and ...... or —— or ”; too.",
    "  leading spaces, trailing spaces  ",
    "    def f(x):\n        return x ** 2  # indented code",
    "Ünïcödé façade — naïve café ½ № ∑ €12.50, EU, ISS, kW, JR",
    "tabs\tand\nnewlines, <s> and </s> as text",
)


@dataclass
class Check:
    checked: int = 0
    failed: int = 0
    examples: list[str] = field(default_factory=list)

    def record(self, ok: bool, example: str = "") -> None:
        self.checked += 1
        if not ok:
            self.failed += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(example[:200])

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.failed == 0, **asdict(self)}


def verify_sentencepiece(
    folder: Path,
    base: sp_pb2.ModelProto,
    merged: sp_pb2.ModelProto,
    texts: Mapping[str, Sequence[str]],
    scripts: ScriptSet,
    token_counts: dict[str, tuple[int, int]] | None = None,
) -> dict[str, dict[str, object]]:
    """Run every check on ``folder`` (which holds the exported files); return the counts.

    ``token_counts``, when given, receives ``{corpus: (base tokens, extended tokens)}`` without BOS.
    """
    base_size = len(base.pieces)
    checks = {name: Check() for name in (
        "base_ids_unchanged", "base_language_unchanged", "digits_split", "no_dead_pieces",
        "hf_matches_reference", "roundtrip",
    )}
    for i, (old, new) in enumerate(zip(base.pieces, merged.pieces)):
        same = (old.piece, old.score, old.type) == (new.piece, new.score, new.type)
        checks["base_ids_unchanged"].record(same, f"id {i}: {old.piece!r} -> {new.piece!r}")
    if len(merged.pieces) < base_size:
        checks["base_ids_unchanged"].record(False, f"merged model has {len(merged.pieces)} < {base_size} pieces")

    added = [p.piece for p in merged.pieces[base_size:]]
    split_digits = base.trainer_spec.split_digits
    for piece in added:
        ok = not split_digits or not has_digit(piece) or admissible(piece, scripts, split_digits=True)
        checks["digits_split"].record(ok, piece)
    dead = set(dead_pieces(merged, base_size))
    for piece in added:
        checks["no_dead_pieces"].record(piece not in dead, piece)

    base_sp = spm.SentencePieceProcessor(model_proto=base.SerializeToString())
    merged_sp = spm.SentencePieceProcessor(model_proto=merged.SerializeToString())
    from .models import load_tokenizer  # imports torch: only when verifying

    hf = load_tokenizer(str(folder))
    bos = [merged_sp.bos_id()] if merged_sp.bos_id() >= 0 else []
    for name, lines in texts.items():
        lines = list(lines)
        ours = merged_sp.encode(lines, num_threads=0)
        theirs = base_sp.encode(lines, num_threads=0)
        # SentencePiece reads "<s>" in text as characters; the HF tokenizer does too with split_special_tokens.
        hf_ids = hf(lines, add_special_tokens=True, return_attention_mask=False,
                    split_special_tokens=True)["input_ids"]
        sp_text = merged_sp.decode(ours, num_threads=0)
        hf_text = hf.batch_decode(hf_ids, skip_special_tokens=True)
        if token_counts is not None:
            token_counts[name] = (sum(map(len, theirs)), sum(map(len, ours)))
        for i, (line, sp_ids, base_ids, hf_line) in enumerate(zip(lines, ours, theirs, hf_ids)):
            if not scripts.contains(line):
                checks["base_language_unchanged"].record(sp_ids == base_ids, line)
            checks["hf_matches_reference"].record(hf_line == bos + sp_ids, line)
            checks["roundtrip"].record(sp_text[i] == line and hf_text[i] == line, line)
    return {name: check.as_dict() for name, check in checks.items()}


def raise_on_failure(checks: Mapping[str, Mapping[str, object]]) -> None:
    """Raise one sentence naming the first failed check, its count and an example."""
    for name, result in checks.items():
        if not result["passed"]:
            example = (result["examples"] or [""])[0]  # type: ignore[index]
            raise VocabExtendError(
                f"verification failed: {name} failed on {result['failed']} of {result['checked']} "
                f"(for example {example!r}); nothing was written — please report this with your inputs"
            )
