"""``vocab-extend export-checkpoint RUN/checkpoints/step-N OUT``: a checkpoint as a Hugging Face folder.

Light to import: ``--help`` and a bad option load neither torch nor transformers (:mod:`.export` is imported
when the command runs).
"""

from __future__ import annotations

import argparse

from ..console import quiet_transformers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint folder of a pretraining run, e.g. runs/x/checkpoints/step-00000040 "
                        "(written by any number of processes)")
    parser.add_argument("output", metavar="OUT",
                        help="the Hugging Face model folder to write (model.safetensors, config, tokenizer, card)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it exists and is not empty")


def run(args: argparse.Namespace) -> int:
    from .export import export_checkpoint  # torch and transformers load here, after the options are parsed

    quiet_transformers()
    print(export_checkpoint(args.checkpoint, args.output, overwrite=args.overwrite).line())
    return 0
