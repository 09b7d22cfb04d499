"""``vocab-extend evaluate-bpb``: bits per byte of a model on named corpora.

Light to import: the options are checked before torch loads (:mod:`.job` scores the corpora).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...corpus import parse_named_spec
from ...errors import VocabExtendError
from ...staging import check_output_file
from ..dtypes import DTYPE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model: HF folder, Hub id, .gguf file or alias smollm2-135m")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the model's own)")
    parser.add_argument(
        "--corpus", action="append", required=True, metavar="NAME=SPEC",
        help="a corpus to score, e.g. ja=corpora/ja (repeatable; SPEC as in --corpus of merge)",
    )
    parser.add_argument("--max-bytes", type=int, default=None, help="score only the first N UTF-8 bytes of each corpus")
    parser.add_argument("--max-docs", type=int, default=None, help="read at most N documents of each corpus")
    parser.add_argument("--text-field", default="text", help="field holding the text in json/parquet/hf corpora")
    parser.add_argument("--block-size", type=int, default=None,
                        help="window length in tokens, BOS included (default: the model's context, at most 1024)")
    parser.add_argument("--stride", type=int, default=None,
                        help="new tokens scored per window after the first (default: half the window)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                        help="weights dtype (auto: float32 on CPU, the checkpoint's dtype on GPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--allow-invalid-lines", action="store_true",
                        help="accept corpus files where more than 10%% of the lines are not valid UTF-8 (skipped)")


def run(args: argparse.Namespace) -> int:
    corpora = [parse_named_spec(value) for value in args.corpus]
    names = [name for name, _ in corpora]
    if len(set(names)) != len(names):
        raise VocabExtendError(f"corpus names repeat in {names}: give each --corpus a distinct NAME=")
    inputs = [("model", args.model), ("tokenizer", args.tokenizer or args.model)]
    inputs += [("corpus", spec) for _, spec in corpora]
    if args.json is not None:
        if args.json.is_dir():
            raise VocabExtendError(f"--json {args.json} is a folder: give a file name such as bpb.json")
        check_output_file(args.json, inputs)
    if args.block_size is not None and args.block_size < 2:
        raise VocabExtendError(f"--block-size {args.block_size} must be at least 2 (BOS plus one token)")
    if args.batch_size < 1:
        raise VocabExtendError(f"--batch-size {args.batch_size} must be at least 1")
    if args.max_bytes is not None and args.max_bytes < 1:
        raise VocabExtendError(f"--max-bytes {args.max_bytes} must be at least 1")
    from .job import evaluate_corpora  # torch and the model load once the options are known to be right

    return evaluate_corpora(args, corpora)
