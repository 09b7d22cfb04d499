"""``vocab-extend evaluate-bpb``: bits per byte of a model on named corpora."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ...atomic import atomic_write_json
from ...corpus import parse_named_spec, read_documents
from ...errors import VocabExtendError
from ...locks import output_lock
from ...staging import check_output_file
from ...tokenizer.loader import load_tokenizer
from .bpb import bits_per_byte, window_settings
from ..loading import DTYPE_CHOICES, load_model


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
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        raise VocabExtendError(f"--device {device} is not a torch device: use cpu, cuda or cuda:N") from None
    if args.block_size is not None and args.block_size < 2:
        raise VocabExtendError(f"--block-size {args.block_size} must be at least 2 (BOS plus one token)")
    if args.batch_size < 1:
        raise VocabExtendError(f"--batch-size {args.batch_size} must be at least 1")
    if args.max_bytes is not None and args.max_bytes < 1:
        raise VocabExtendError(f"--max-bytes {args.max_bytes} must be at least 1")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VocabExtendError(f"--device {device} asks for a GPU but torch sees none: use --device cpu")
    documents = {name: read_documents(spec, text_field=args.text_field, max_docs=args.max_docs,
                                      max_bytes=args.max_bytes, allow_skipped=args.allow_invalid_lines)
                 for name, spec in corpora}
    tokenizer = load_tokenizer(args.tokenizer or args.model)
    model = load_model(args.model, device=device, dtype=args.dtype)
    block_size, stride = window_settings(model, args.block_size, args.stride)
    results: dict[str, dict[str, object]] = {}
    for name, spec in corpora:
        result = bits_per_byte(
            model, tokenizer, documents[name], max_bytes=args.max_bytes, block_size=block_size,
            stride=stride, batch_size=args.batch_size, device=device, progress=not args.no_progress,
        )
        results[name] = {"corpus": spec, **asdict(result)}
        print(f"{name}: {result.bpb:.4f} bits/byte  ({result.tokens} tokens, {result.bytes} bytes, "
              f"loss {result.loss:.4f}, {result.bytes / result.tokens:.2f} bytes/token)")
    if args.json:
        report = {"model": args.model, "tokenizer": args.tokenizer or args.model, "max_bytes": args.max_bytes,
                  "block_size": block_size, "stride": stride, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(args.json):
            atomic_write_json(args.json, report)
    sys.stdout.flush()
    return 0
