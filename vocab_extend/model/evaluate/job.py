"""``evaluate-bpb``'s job: read the corpora, load the tokenizer and the model, score, print and write JSON.

The options were checked by :mod:`.cli`; the scoring is :func:`.bpb.bits_per_byte`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

import torch

from ...atomic import atomic_write_json
from ...corpus import read_documents
from ...errors import VocabExtendError
from ...locks import output_lock
from ...tokenizer.loader import load_tokenizer
from ..loading import load_model
from .bpb import bits_per_byte, window_settings


def evaluate_corpora(args: argparse.Namespace, corpora: list[tuple[str, str]]) -> int:
    """Bits per byte of ``args.model`` on each ``(name, spec)`` corpus, printed and (``--json``) written."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        raise VocabExtendError(f"--device {device} is not a torch device: use cpu, cuda or cuda:N") from None
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
            desc=f"bits per byte of {name}",
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
