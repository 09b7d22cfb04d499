"""``vocab-extend export-gguf``: the options; :mod:`.gguf` writes the file.

Light to import: ``--help`` and a bad option load neither numpy nor gguf (the export is imported when it runs).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF model folder (as written by `vocab-extend init-model`)")
    parser.add_argument("--output", required=True, help="GGUF file to write")
    parser.add_argument("--outtype", default="f16", metavar="{f32,f16,q8_0}",
                        help="weight type: f32 (exact), f16 (default), q8_0 (8-bit blocks)")
    parser.add_argument("--pre", default=None, metavar="NAME",
                        help="llama.cpp pre-tokenizer name of a byte-level tokenizer (default: named from the "
                        "pre-tokenizer in tokenizer.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    from .gguf import export_gguf  # numpy, gguf and safetensors load when the export runs

    summary = export_gguf(args.model, args.output, args.outtype, pre=args.pre, overwrite=args.overwrite)
    pre = f", pre-tokenizer {summary.pre}" if summary.tokenizer_model == "gpt2" else ""
    print(f"wrote {summary.output}: {summary.outtype}, {summary.tensors} tensors, {summary.rows:,} vocabulary rows "
          f"({summary.padding} unused padding), tokenizer {summary.tokenizer_model}{pre}, "
          f"{summary.bytes / 2**20:.1f} MiB")
    return 0
