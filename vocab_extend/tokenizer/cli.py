"""``vocab-extend merge``: the options of the main job, checked before any work starts."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..corpus import parse_named_spec, resolve_files
from ..errors import VocabExtendError
from ..families.interface import DEFAULT_VOCAB_SIZE, MAX_NEW_MODEL_SIZE, TrainOptions
from ..scripts import LANGUAGES
from ..sources import DEFAULT_BASE
from .inputs import SMALL_CORPUS_BYTES, SMALL_CORPUS_HELDOUT_FRACTION, SMALL_CORPUS_MIN_BYTES
from .job import DEFAULT_HELDOUT_FRACTION, ExtendConfig, extend_tokenizer
from .multilang import MODES, parse_sizes
from .sampling import DEFAULT_SAMPLE_CHARS, check_budget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainOptions()
    parser.add_argument("--base", default=DEFAULT_BASE,
                        help=f"SentencePiece .model, folder, tokenizer.json, GGUF, Hub id or alias (default {DEFAULT_BASE})")
    parser.add_argument("--corpus", action="append", default=None, metavar="SPEC",
                        help="training text: file, folder, glob, .jsonl/.json/.parquet(.gz) or hf:NAME[:CONFIG][:SPLIT] "
                             "(repeat; default: the bundled corpora/ja sample); LANG=SPEC marks its language, and "
                             "corpora of several languages merge them all (--corpus th=FILE --corpus vi=FILE)")
    parser.add_argument("--new-model", metavar="FILE|FOLDER", type=Path, default=None,
                        help="merge this new-language model instead of training one (SentencePiece bases: a "
                             "SentencePiece BPE or unigram .model; byte-level bases: a BPE tokenizer.json; or a "
                             "merge's output folder, whose new-language model is used)")
    parser.add_argument("--vocab-size", default=None, metavar="N|LANG=N,...",
                        help=f"pieces of the new-language model, not the total (default {DEFAULT_VOCAB_SIZE:,}, "
                             "lowered for a small corpus); fewer are added to the base (those it already has, or "
                             "without a character of the language, are skipped); several languages: one number "
                             "each gets, or th=8000,vi=8000")
    parser.add_argument("--total-vocab-size", type=int, default=None, metavar="N",
                        help="the extended tokenizer's size instead: the new-language model is trained with N minus "
                             "the base's size pieces, and since fewer are added the total comes out below N (the "
                             "summary says by how much); one language only")
    parser.add_argument("--multilingual", choices=MODES, default=MODES[0],
                        help="several languages: one model per language merged in turn (sequential, default: each "
                             "keeps its budget) or one model on every corpus (joint)")
    parser.add_argument("--model-type", choices=("bpe", "unigram"), default=defaults.model_type,
                        help="SentencePiece bases: the new-language model's algorithm (default "
                             f"{defaults.model_type}; a unigram model's pieces need their halves in the vocabulary)")
    parser.add_argument("--lang", default="auto", metavar="CODE",
                        help=f"the new language, an ISO 639 code ({', '.join(LANGUAGES)}) or auto (default: "
                             "detected from the script of the corpus; a script several languages share asks for it); "
                             "several: th,vi with corpora marked th=FILE, vi=FILE")
    parser.add_argument("--keep", action="append", default=[], metavar="NAME=SPEC",
                        help="base-language text that must tokenize exactly as before (repeat); a language written "
                             "in the base's script (vi, id ...) never adds a piece built only on its letters "
                             "(default: the bundled English sample and built-in lines)")
    parser.add_argument("--widen-split", action="store_true",
                        help="byte-level bases: keep the new script's letters and marks in one pre-token (the base's "
                             "split ends words at every combining mark: Thai, Hindi, Tamil ...); text without that "
                             "script splits exactly as before; export-gguf refuses such a merge")
    parser.add_argument("--eval", action="append", default=[], metavar="LANG=SPEC",
                        help="corpus to measure and verify on, labelled 'training text' when its files are training "
                             "files (repeat; default: the training sample, labelled as such, and the bundled English; the held-out "
                             "share is always measured)")
    _add_output_and_training_arguments(parser)


def _add_output_and_training_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainOptions()
    parser.add_argument("--output-dir", metavar="DIR", type=Path, default=None,
                        help="output folder (default outputs/<base>-<lang>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--pad-to-multiple-of", metavar="N", type=int, default=None,
                        help="record an embedding size padded to this multiple (used by init-model; default: no "
                             "padding)")
    parser.add_argument("--text-field", metavar="FIELD", default="text",
                        help="field holding the text in json/parquet/hf corpora (default text)")
    parser.add_argument("--max-docs", metavar="N", type=int, default=None,
                        help="read at most this many documents per corpus (default: all)")
    parser.add_argument("--sample-chars", metavar="N", type=int, default=DEFAULT_SAMPLE_CHARS,
                        help="train each new-language model on a content-hashed sample of the corpus of at most this "
                             f"many characters, read as it streams so memory stays bounded (default "
                             f"{DEFAULT_SAMPLE_CHARS:,}: more barely changes held-out chars/token; a smaller corpus is "
                             "used whole); 0: train on everything")
    parser.add_argument("--character-coverage", metavar="SHARE", type=float,
                        default=defaults.character_coverage,
                        help="SentencePiece bases: share of the corpus's characters the new-language model covers "
                             f"with pieces of their own, the rarest left to byte fallback (default "
                             f"{defaults.character_coverage}; 0.98 to 1.0)")
    parser.add_argument("--max-sentence-length", metavar="BYTES", type=int,
                        default=defaults.max_sentence_length,
                        help="SentencePiece bases: longest line (bytes) the trainer takes; longer documents are cut "
                             f"(default {defaults.max_sentence_length:,})")
    parser.add_argument("--input-sentence-size", metavar="N", type=int, default=defaults.input_sentence_size,
                        help="SentencePiece bases: sentences sampled from a large corpus for training (default "
                             f"{defaults.input_sentence_size:,}; 0: all)")
    parser.add_argument("--verify-sample", metavar="N", type=int, default=2_000,
                        help="training-corpus lines for the final verification: the N distinct lines of the "
                             "training sample of smallest content hash (default 2,000)")
    parser.add_argument("--seed", metavar="N", type=int, default=0,
                        help="seed of the content hash that picks the verified training lines (and the "
                             "training-sample row) and the training sample of a corpus over --sample-chars, and of "
                             "SentencePiece's sampling "
                             "(default 0); the held-out share is chosen by content hash and does not depend on it")
    parser.add_argument("--heldout-fraction", metavar="SHARE", type=float, default=None,
                        help="share of the corpus kept out of training and reported as '<lang> (held out)' "
                             f"(content-hashed; default {DEFAULT_HELDOUT_FRACTION}, or "
                             f"{SMALL_CORPUS_HELDOUT_FRACTION} for local files of {SMALL_CORPUS_MIN_BYTES // 1024} "
                             f"KB to {SMALL_CORPUS_BYTES // 1_000_000} MB so the figure rests on enough text; 0 to "
                             "train on everything)")
    parser.add_argument("--allow-invalid-lines", action="store_true",
                        help="accept corpus files where more than 10%% of the lines are not valid UTF-8 (skipped)")


MAX_SEED = 2**32 - 1  # SentencePiece takes an unsigned 32-bit seed


def _check_sizes(size: int | None, sizes: dict[str, int]) -> None:
    for value in ([size] if size is not None else []) + list(sizes.values()):
        if value < 100:
            raise VocabExtendError(f"--vocab-size {value} is too small: use at least 100")
        if value > MAX_NEW_MODEL_SIZE:
            raise VocabExtendError(f"--vocab-size {value} is beyond what any corpus supports: use at most "
                                   f"{MAX_NEW_MODEL_SIZE:,} (16,000 is typical)")


def _check_ranges(args: argparse.Namespace) -> None:
    """Every number in range, before any work (one sentence each)."""
    _check_sizes(*parse_sizes(args.vocab_size))
    if args.total_vocab_size is not None and args.vocab_size is not None:
        raise VocabExtendError("--vocab-size counts the new-language pieces and --total-vocab-size the whole "
                               "tokenizer: give one of them")
    if args.total_vocab_size is not None and not 0 < args.total_vocab_size <= MAX_NEW_MODEL_SIZE:
        raise VocabExtendError(f"--total-vocab-size {args.total_vocab_size} must be between 1 and "
                               f"{MAX_NEW_MODEL_SIZE:,}")
    if args.verify_sample < 1:
        raise VocabExtendError(f"--verify-sample {args.verify_sample} must be at least 1 (default 2,000)")
    if not 0 <= args.seed <= MAX_SEED:
        raise VocabExtendError(f"--seed {args.seed} must be between 0 and {MAX_SEED:,}")
    if not 0 <= args.input_sentence_size < 2**62:
        raise VocabExtendError(f"--input-sentence-size {args.input_sentence_size} must be 0 (all) or a positive count")
    if not 0.98 <= args.character_coverage <= 1.0:
        raise VocabExtendError(f"--character-coverage {args.character_coverage} must be between 0.98 and 1.0 "
                               "(SentencePiece's range; 0.9995 is the default for Japanese and Chinese)")
    if args.heldout_fraction is not None and not 0 <= args.heldout_fraction <= 0.5:
        raise VocabExtendError(f"--heldout-fraction {args.heldout_fraction} must be between 0 and 0.5")
    if args.max_docs is not None and args.max_docs < 1:
        raise VocabExtendError(f"--max-docs {args.max_docs} must be at least 1")
    check_budget(args.sample_chars)


def _check_new_model_options(args: argparse.Namespace) -> None:
    """Training options do nothing when --new-model skips training: say so instead of ignoring them."""
    if args.new_model is None:
        return
    defaults = TrainOptions()
    given = [option for option, changed in (
        ("--vocab-size", args.vocab_size is not None),
        ("--total-vocab-size", args.total_vocab_size is not None),
        ("--model-type", args.model_type != defaults.model_type),
        ("--character-coverage", args.character_coverage != defaults.character_coverage),
        ("--input-sentence-size", args.input_sentence_size != defaults.input_sentence_size),
        ("--sample-chars", args.sample_chars != DEFAULT_SAMPLE_CHARS),
        ("--max-sentence-length", args.max_sentence_length != defaults.max_sentence_length),
    ) if changed]
    if given:
        raise VocabExtendError(f"{', '.join(given)} set training, but --new-model skips training: drop "
                               f"{'it' if len(given) == 1 else 'them'} or drop --new-model")


def config_from_args(args: argparse.Namespace) -> ExtendConfig:
    _check_ranges(args)
    _check_new_model_options(args)
    if args.max_sentence_length < 64:
        raise VocabExtendError(f"--max-sentence-length {args.max_sentence_length} is too small: use at least 64 bytes")
    if args.pad_to_multiple_of is not None and args.pad_to_multiple_of < 1:
        raise VocabExtendError("--pad-to-multiple-of must be a positive integer")
    for value in args.keep:
        if "=" not in value:
            raise VocabExtendError(f"--keep {value}: give NAME=SPEC, e.g. --keep en=english.txt")
        if not parse_named_spec(value)[1].startswith("hf:"):
            resolve_files(parse_named_spec(value)[1])
    for value in args.eval:  # checked now, not after training
        if "=" not in value or value.startswith("hf:"):
            raise VocabExtendError(f"--eval {value}: give LANG=SPEC, e.g. --eval ja=held_out_ja.txt")
        _, spec = parse_named_spec(value)
        if not spec.startswith("hf:"):
            resolve_files(spec)
    corpus = args.corpus if args.corpus is not None else ExtendConfig().corpus
    if args.corpus is None and not Path(corpus[0]).exists():
        raise VocabExtendError("the bundled sample corpus is not installed here: pass --corpus")
    return ExtendConfig(
        base=args.base,
        corpus=corpus,
        new_model=args.new_model,
        lang=args.lang,
        eval=args.eval,
        output_dir=args.output_dir,
        overwrite=args.overwrite,
        pad_to_multiple_of=args.pad_to_multiple_of,
        text_field=args.text_field,
        max_docs=args.max_docs,
        new_model_size=parse_sizes(args.vocab_size)[0],
        total_vocab_size=args.total_vocab_size,
        lang_sizes=parse_sizes(args.vocab_size)[1],
        multilingual=args.multilingual,
        train=TrainOptions(
            model_type=args.model_type,
            character_coverage=args.character_coverage,
            max_sentence_length=args.max_sentence_length,
            input_sentence_size=args.input_sentence_size,
            widen_split=args.widen_split,
        ),
        verify_sample=args.verify_sample,
        seed=args.seed,
        allow_invalid_lines=args.allow_invalid_lines,
        heldout_fraction=args.heldout_fraction,
        keep=args.keep,
        sample_chars=args.sample_chars,
    )


def run(args: argparse.Namespace) -> int:
    extend_tokenizer(config_from_args(args))
    return 0
