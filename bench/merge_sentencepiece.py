#!/usr/bin/env python3
"""Benchmark of the SentencePiece path on the shared real corpora.

Trains a 16,000-piece Japanese model on three of the shared Japanese files, merges it into the bundled
Mistral-7B v0.1 tokenizer, and reports: held-out Japanese and English characters per token, SentencePiece
training time, merge + export + full verification time, and Hugging Face tokenizer batch throughput against
raw ``tokenizers`` on the same tokenizer.json (median of ``--runs``).

    python bench/merge_sentencepiece.py --json bench/results/merge_sentencepiece.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["ja/jaquad_train_wikipedia.txt", "ja/jglue_short_sentences.txt", "ja/tatoeba_sentences.txt"]
HELD_OUT = "ja/jsquad_test_wikipedia.txt"
ENGLISH = "en"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--vocab-size", type=int, default=16_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from vocab_extend.corpus import read_documents
    from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer

    corpora = args.corpora
    if not args.corpora.is_dir():
        raise SystemExit(f"error: {args.corpora} does not exist: pass --corpora with a folder laid out as "
                         "<lang>/<name>.txt (bench/README.md says how to get equivalent public text)")
    train = [str(corpora / f) for f in TRAIN]
    work = Path(tempfile.mkdtemp(prefix="bench-sp-"))
    evals = [f"ja={corpora / HELD_OUT}", f"en={corpora / ENGLISH}"]

    train_times, merge_times = [], []
    for run in range(args.runs):
        out = work / f"train{run}"
        start = time.perf_counter()
        extend_tokenizer(ExtendConfig(corpus=train, new_model_size=args.vocab_size, output_dir=out, eval=evals,
                                      heldout_fraction=0))  # held-out text is its own file here
        train_times.append(time.perf_counter() - start)
    new_model = work / "train0" / "new_language.model"
    for run in range(args.runs):
        out = work / f"merge{run}"
        start = time.perf_counter()
        extend_tokenizer(ExtendConfig(corpus=[str(corpora / TRAIN[2])], new_model=new_model, output_dir=out,
                                      eval=evals, heldout_fraction=0))
        merge_times.append(time.perf_counter() - start)
    report = json.loads((work / "train0" / "report.json").read_text(encoding="utf-8"))

    hf = AutoTokenizer.from_pretrained(str(work / "train0"))
    raw = Tokenizer.from_file(str(work / "train0" / "tokenizer.json"))
    throughput = {
        "paragraphs (jsquad test + 5,000 jaquad)": read_documents(str(corpora / HELD_OUT))
        + read_documents(str(corpora / TRAIN[0]), max_docs=5_000),
        "short sentences (5,000 tatoeba)": read_documents(str(corpora / TRAIN[2]), max_docs=5_000),
    }
    throughput_figures = {name: _throughput(hf, raw, lines, max(args.runs, 15)) for name, lines in throughput.items()}
    anchor = _anchor_comparison(work, read_documents(str(corpora / HELD_OUT)), read_documents(str(corpora / ENGLISH)))
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "runs": args.runs,
        "vocab_size_new_model": args.vocab_size,
        "added_pieces": report["added_pieces"],
        "held_out_ja": report["corpora"]["ja"],
        "en": report["corpora"]["en"],
        "checks_passed": all(c["passed"] for c in report["checks"].values()),
        "base_language_lines_checked": report["checks"]["base_language_unchanged"]["checked"],
        "train_merge_export_verify_s_median": statistics.median(train_times),
        "merge_export_verify_s_median": statistics.median(merge_times),
        "sentencepiece_training_s_median": statistics.median(train_times) - statistics.median(merge_times),
        "hf_vs_raw_tokenizers_throughput": throughput_figures,
        "chinese_llama_style_merge_of_the_same_new_model": anchor,
    }
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _anchor_comparison(work: Path, ja: list[str], en: list[str]) -> dict[str, object]:
    """The same new model merged as Chinese-LLaMA's ``merge_tokenizers.py`` does, against our merge.

    That script appends every new piece that is not in the base with score 0, and users load the result
    through transformers' automatic conversion of ``tokenizer.model``. Figures: English lines (no Japanese
    character) whose ids change, pieces the encoder can never produce, held-out Japanese lines on which the
    converted Hugging Face tokenizer disagrees with SentencePiece (ids without special tokens), chars/token.
    """
    import sentencepiece as spm
    from transformers import AutoTokenizer

    from vocab_extend.families.sentencepiece import parse_model
    from vocab_extend.families import resolve_tokenizer
    from vocab_extend.families.sentencepiece.merge import dead_pieces
    from vocab_extend.scripts import JAPANESE

    base = parse_model(resolve_tokenizer().path, "model")
    new = parse_model(work / "train0" / "new_language.model", "model")
    anchor = parse_model(resolve_tokenizer().path, "model")
    have = {p.piece for p in base.pieces}
    for p in new.pieces:
        if p.piece not in have:
            added = anchor.pieces.add()
            added.piece, added.score = p.piece, 0.0
    folder = work / "anchor"
    folder.mkdir()
    (folder / "tokenizer.model").write_bytes(anchor.SerializeToString())
    english = [line for line in en if not JAPANESE.contains(line)]
    base_sp = spm.SentencePieceProcessor(model_proto=base.SerializeToString())

    def figures(proto, hf) -> dict[str, object]:
        sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        before, after = base_sp.encode(english, num_threads=0), sp.encode(english, num_threads=0)
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        used = sorted({sp.id_to_piece(t) for i in changed for t in after[i] if t >= len(base.pieces)})
        ja_ids = sp.encode(ja, num_threads=0)
        hf_ids = hf(ja, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return {
            "added_pieces": len(proto.pieces) - len(base.pieces),
            "english_lines_changed": len(changed),
            "english_lines_checked": len(english),
            "english_changed_by_pieces": used[:12],
            "dead_pieces": len(dead_pieces(proto, len(base.pieces))),
            "hf_disagrees_on_ja_lines": sum(a != list(b) for a, b in zip(ja_ids, hf_ids)),
            "ja_lines": len(ja),
            "ja_chars_per_token": sum(map(len, ja)) / sum(map(len, ja_ids)),
        }

    ours = work / "train0"
    return {
        "chinese_llama_style (transformers' conversion)": figures(anchor, AutoTokenizer.from_pretrained(str(folder))),
        "vocab_extend (our tokenizer.json)": figures(parse_model(ours / "tokenizer.model", "model"),
                                                     AutoTokenizer.from_pretrained(str(ours))),
    }


def _throughput(hf, raw, lines: list[str], runs: int) -> dict[str, float]:
    """Batch encoding speed of the HF tokenizer against raw ``tokenizers`` on the same tokenizer.json.

    Both sides deliver Python lists of ids (what a data pipeline consumes), interleaved, median of ``runs``.
    Each call starts after a garbage collection and its result is freed after the clock stops, so neither
    side pays for the other's garbage. ``raw_encodings_only`` is the Rust call alone, without turning its
    Encoding objects into lists; ``hf_overhead_us_per_doc`` is what transformers adds per sequence.
    """
    calls = {
        "hf": lambda: hf(lines, return_attention_mask=False)["input_ids"],
        "raw": lambda: [e.ids for e in raw.encode_batch(lines)],
        "raw_encodings_only": lambda: raw.encode_batch(lines),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            gc.collect()
            start = time.perf_counter()
            result = call()
            times[name].append(time.perf_counter() - start)
            del result
    median = {name: statistics.median(values) for name, values in times.items()}
    chars = sum(map(len, lines))
    return {
        "docs": len(lines),
        "chars_per_doc": chars / len(lines),
        "hf_chars_per_s": chars / median["hf"],
        "raw_chars_per_s": chars / median["raw"],
        "hf_over_raw": median["raw"] / median["hf"],
        "raw_encodings_only_chars_per_s": chars / median["raw_encodings_only"],
        "hf_overhead_us_per_doc": (median["hf"] - median["raw"]) / len(lines) * 1e6,
    }


if __name__ == "__main__":
    main()
