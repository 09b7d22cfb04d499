#!/usr/bin/env python3
"""Benchmark of the byte-level BPE path: SmolLM2-135M extended with 16,000 Japanese tokens.

Trains on three of the shared Japanese files, evaluates on the held-out ``jsquad_test_wikipedia`` and the
English files, and reports: characters per token (base, extended, and the naive ``add_tokens`` tokenizer
holding the same new tokens), English ids identical to the base, encoding time of held-out Japanese against
the base (median of ``--runs``, word cache cleared before each run), load time, and the same figures for a
new model trained with SentencePiece and converted (``--trainers``), which is how the training choice in
``vocab_extend/families/bytelevel/train.py`` was made.

    python bench/bytelevel_japanese.py --json bench/results/bytelevel_japanese.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["ja/jaquad_train_wikipedia.txt", "ja/jglue_short_sentences.txt", "ja/tatoeba_sentences.txt"]
HELD_OUT = "ja/jsquad_test_wikipedia.txt"
ENGLISH = "en"


def _chars_per_token(encode_batch: Callable[[list[str]], list[list[int]]], lines: list[str]) -> float:
    return sum(map(len, lines)) / sum(len(ids) for ids in encode_batch(lines))


def _clock(action: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def _encode_timings(tokenizers: dict[str, object], lines: list[str], runs: int) -> dict[str, dict[str, float]]:
    """Median seconds of ``encode_batch(lines)`` on all cores and on one thread.

    Runs interleave the tokenizers, so load from other processes hits them alike; the BPE word cache is
    cleared before every run. CPU seconds are the steadier figure on a shared machine.
    """
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in tokenizers}
    for _ in range(runs):
        for name, tok in tokenizers.items():
            for kind, parallel in (("batch", "true"), ("one_thread", "false")):
                os.environ["TOKENIZERS_PARALLELISM"] = parallel
                tok.model._clear_cache()
                wall, cpu = _clock(lambda: tok.encode_batch(lines))
                samples[name].setdefault(f"{kind}_wall_s", []).append(wall)
                samples[name].setdefault(f"{kind}_cpu_s", []).append(cpu)
    return {name: {k: statistics.median(v) for k, v in kinds.items()} for name, kinds in samples.items()}


def _load_timings(folders: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    """Median seconds of ``AutoTokenizer.from_pretrained`` per folder, interleaved."""
    from transformers import AutoTokenizer

    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in folders}
    for _ in range(runs):
        for name, folder in folders.items():
            samples[name].append(_clock(lambda: AutoTokenizer.from_pretrained(str(folder))))
    return {
        name: {"wall_s": statistics.median(w for w, _ in s), "cpu_s": statistics.median(c for _, c in s)}
        for name, s in samples.items()
    }


def _naive_add_tokens(base_dir: Path, added_text: list[str], out: Path) -> float:
    """The base with ``add_tokens`` of the same new tokens (whole-character ones), saved to ``out``."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(base_dir))
    start = time.perf_counter()
    hf.add_tokens(added_text)
    seconds = time.perf_counter() - start
    hf.save_pretrained(str(out))
    return seconds


class _Candidates:
    """A stand-in new model for the SentencePiece comparison: its tokens, saved as JSON."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens

    def save(self, path: str) -> None:
        Path(path).write_text(json.dumps({"trainer": "sentencepiece", "tokens": self.tokens}, ensure_ascii=False),
                              encoding="utf-8")


def _sentencepiece_extension(base, texts, vocab_size: int):
    """The same merge from a SentencePiece BPE converted to bytes, for the trainer comparison."""
    import io
    from collections import Counter

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    from vocab_extend.families.bytelevel.alphabet import to_byte_level
    from vocab_extend.families.bytelevel.derive import derive_merges
    from vocab_extend.families.bytelevel.write import build_extended
    from vocab_extend.families.interface import Extension
    from vocab_extend.scripts import JAPANESE

    buffer = io.BytesIO()
    spm.set_random_generator_seed(0)
    lines = (line for text in texts for line in text.splitlines() if line.strip())
    spm.SentencePieceTrainer.train(sentence_iterator=lines, model_writer=buffer, model_type="bpe",
                                   vocab_size=vocab_size, character_coverage=0.9995, split_digits=True,
                                   add_dummy_prefix=False, normalization_rule_name="identity",
                                   num_threads=os.cpu_count() or 1, minloglevel=2)
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    normal = sp_pb2.ModelProto.SentencePiece.NORMAL
    candidates = [to_byte_level(p.piece.replace("\u2581", " ")) for p in proto.pieces if p.type == normal]
    tokenizer = base.model.tokenizer
    derivation = derive_merges(tokenizer, candidates, JAPANESE, split_digits=base.splits_digits)
    return Extension(base.first_new_id, derivation.added, Counter(derivation.skipped), derivation.examples,
                     build_extended(tokenizer, derivation.added, derivation.merges), _Candidates(candidates),
                     {"intermediate_tokens": derivation.intermediates})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--vocab-size", type=int, default=16_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trainers", default="tokenizers,sentencepiece")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from vocab_extend.corpus import iter_documents, read_documents
    from vocab_extend.families import get_family
    from vocab_extend.families.bytelevel.alphabet import whole_text
    from vocab_extend.families.interface import TrainOptions
    from vocab_extend.scripts import JAPANESE
    from vocab_extend.settings import write_hf_files
    from vocab_extend.families import resolve_tokenizer
    from vocab_extend.tokenizer.checks import verify_folder

    corpora = args.corpora
    if not corpora.is_dir():
        raise SystemExit(f"error: {corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    family = get_family("bytelevel")
    loaded = family.load_base(resolve_tokenizer("smollm2-135m"))
    work = Path(tempfile.mkdtemp(prefix="bench-bytelevel-"))
    base_dir = work / "base"
    base_dir.mkdir()
    loaded.model.tokenizer.save(str(base_dir / "tokenizer.json"))
    write_hf_files(base_dir, loaded.settings, family.derived_settings(loaded))
    base = Tokenizer.from_file(str(base_dir / "tokenizer.json"))

    ja = read_documents(str(corpora / HELD_OUT))
    en = read_documents(str(corpora / ENGLISH))

    def texts():
        for name in TRAIN:
            yield from iter_documents(str(corpora / name))

    def plain(tokenizer):
        return lambda lines: [e.ids for e in tokenizer.encode_batch(lines, add_special_tokens=False)]

    en_plain = [line for line in en if not JAPANESE.contains(line)]
    base_en_ids = plain(base)(en_plain)

    def quality(tokenizer) -> dict[str, float]:
        return {
            "chars_per_token_ja": _chars_per_token(plain(tokenizer), ja),
            "chars_per_token_en": _chars_per_token(plain(tokenizer), en),
            # English lines without a Japanese character (all but a few) must keep the base's ids
            "en_lines_identical": sum(a == b for a, b in zip(plain(tokenizer)(en_plain), base_en_ids))
            / len(en_plain),
        }

    figures: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, CPU",
        "runs": args.runs,
        "vocab_size_new_model": args.vocab_size,
        "held_out_ja": {"file": HELD_OUT, "lines": len(ja), "chars": sum(map(len, ja))},
        "en": {"files": ENGLISH, "lines": len(en), "lines_without_japanese": len(en_plain)},
        "base": quality(base),
    }
    folders = {"base": base_dir}
    for trainer in [t for t in args.trainers.split(",") if t]:
        out = work / trainer
        out.mkdir()
        start = time.perf_counter()
        if trainer == "tokenizers":
            new = family.train(loaded, texts(), TrainOptions(new_model_size=args.vocab_size), None)
            outcome = family.merge(loaded, new, JAPANESE)
        else:
            outcome = _sentencepiece_extension(loaded, texts(), args.vocab_size)
        family.write(loaded, outcome, out)
        write_hf_files(out, loaded.settings, family.derived_settings(loaded))
        extend_seconds = time.perf_counter() - start
        ext = Tokenizer.from_file(str(out / "tokenizer.json"))
        start = time.perf_counter()
        checks, _ = verify_folder(out, family, loaded, {"ja": ja, "en": en}, JAPANESE)
        figures[trainer] = {
            "added_tokens": len(outcome.added),
            "intermediate_tokens": outcome.report_extra["intermediate_tokens"],
            "skipped": dict(outcome.skipped),
            "extend_s": extend_seconds,
            "verify_s": time.perf_counter() - start,
            "checks_passed": all(c["passed"] for c in checks.values()),
            **quality(ext),
        }
        folders[trainer] = out
        if trainer == "tokenizers":
            naive_dir = work / "naive"
            text_tokens = [t for t in (whole_text(tok) for tok in outcome.added) if t is not None]
            add_seconds = _naive_add_tokens(base_dir, text_tokens, naive_dir)
            naive = Tokenizer.from_file(str(naive_dir / "tokenizer.json"))
            figures["naive_add_tokens"] = {"added_tokens": len(text_tokens), "add_tokens_s": add_seconds,
                                           **quality(naive)}
            folders["naive_add_tokens"] = naive_dir
    tokenizers = {name: Tokenizer.from_file(str(folder / "tokenizer.json")) for name, folder in folders.items()}
    encode = _encode_timings(tokenizers, ja, args.runs)
    load = _load_timings(folders, args.runs)
    for name in folders:
        entry = figures[name]
        entry["encode_ja"] = encode[name]  # type: ignore[index]
        entry["encode_ja_vs_base"] = {k: v / encode["base"][k] for k, v in encode[name].items()}  # type: ignore[index]
        entry["load"] = load[name]  # type: ignore[index]
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
