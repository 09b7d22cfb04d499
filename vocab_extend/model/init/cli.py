"""``vocab-extend init-model``: the options, checked before any model library loads, then :mod:`.job`.

Light to import: ``--help`` and a bad option cost no torch import (the job is imported when it runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..dtypes import DTYPE_CHOICES
from .config import METHOD_HELP, InitConfig
from .distill import DistillConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="base model: HF folder, Hub id, .gguf file or alias smollm2-135m")
    parser.add_argument("--tokenizer", required=True, type=Path,
                        help="extended tokenizer folder written by `vocab-extend merge`")
    parser.add_argument("--method", choices=tuple(METHOD_HELP), default="mean",
                        help="new rows: " + ", ".join(f"{name} ({text})" for name, text in METHOD_HELP.items()))
    parser.add_argument("--corpus", default=None, metavar="SPEC",
                        help="distill: text in which the new tokens occur (default: the merge's training corpus "
                             "when vocab_extend.json names one)")
    parser.add_argument("--distill-contexts", type=int, default=DistillConfig.contexts_per_token,
                        help=f"distill: context windows per new token (default {DistillConfig.contexts_per_token})")
    parser.add_argument("--distill-steps", type=int, default=DistillConfig.steps,
                        help=f"distill: optimiser steps of the input rows (default {DistillConfig.steps})")
    parser.add_argument("--pad-to-multiple-of", type=int, default=None,
                        help="pad the embedding rows to a multiple of this (default: the merge's setting)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hewitt and random draws and of distill")
    parser.add_argument("--dtype", default="checkpoint", choices=DTYPE_CHOICES,
                        help="dtype of the saved weights (default: the checkpoint's; GGUF models give float32)")
    parser.add_argument("--output-dir", required=True, type=Path, help="where to write the resized model")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--push-to-hub", metavar="REPO", default=None,
                        help="also upload the written folder to this Hub model repo (created when missing)")


def run(args: argparse.Namespace) -> int:
    distill = DistillConfig(contexts_per_token=args.distill_contexts, steps=args.distill_steps, seed=args.seed)
    config = InitConfig(method=args.method, pad_to_multiple_of=args.pad_to_multiple_of, seed=args.seed,
                        corpus=args.corpus, distill=distill)
    from ..card import push_folder  # the job's libraries load once the options are known to be right
    from .job import init_model

    report = init_model(args.model, args.tokenizer, args.output_dir, config, overwrite=args.overwrite,
                        dtype=args.dtype)
    print(f"wrote {args.output_dir}: {report.base_vocab_size:,} + {report.new_tokens:,} new "
          f"+ {report.padding_rows:,} padding = {report.embedding_size:,} rows "
          f"({report.method}, {'tied' if report.tied else 'untied'} embeddings)", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.push_to_hub:
        print(f"pushed to {push_folder(args.output_dir, args.push_to_hub)}", file=sys.stderr)
    return 0
