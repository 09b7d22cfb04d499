"""``vocab-extend init-model``: load a model, resize it to an extended tokenizer, save model + tokenizer.

The rules for the new rows are in :mod:`vocab_extend.model.embeddings`.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from ...corpus import read_documents
from ...errors import VocabExtendError
from ...locks import output_lock
from ...metadata import read_metadata
from ...atomic import usual_modes
from ...staging import check_output_dir, staging_folder
from ...tokenizer.loader import load_base_tokenizer, load_tokenizer
from ..card import CARD_FILE, push_folder, read_tokenizer_report, render_card
from .distill import DistillConfig
from .embeddings import METHODS, InitConfig, InitReport, init_embeddings
from ..loading import DTYPE_CHOICES, load_model

REPORT_FILE = "init_embeddings.json"
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "vocab_extend.json",
)


def init_model(model_spec: str, tokenizer_dir: Path, output_dir: Path, config: InitConfig | None = None, *,
               overwrite: bool = False, dtype: str = "checkpoint") -> InitReport:
    """Load ``model_spec``, extend it to the tokenizer in ``tokenizer_dir`` and save model + tokenizer.

    The folder is written with safetensors through ``save_pretrained`` into a temporary folder beside
    ``output_dir`` and renamed into place at the end, so a failure leaves nothing half-written.
    """
    config = config or InitConfig()
    tokenizer_dir = Path(tokenizer_dir)
    meta = read_metadata(tokenizer_dir)
    if config.pad_to_multiple_of is None:
        config.pad_to_multiple_of = meta.pad_to_multiple_of
    output_dir = Path(output_dir)
    inputs = [("tokenizer", tokenizer_dir), ("model", model_spec)]
    if config.corpus:
        inputs.append(("corpus", config.corpus))
    check_output_dir(output_dir, overwrite, inputs)
    with output_lock(output_dir):  # held from before loading, so a second writer is refused at once
        texts = _distill_texts(config, meta, tokenizer_dir)  # before the model: a bad corpus fails fast
        tokenizer = load_tokenizer(str(tokenizer_dir))
        base_tokenizer = load_base_tokenizer(tokenizer_dir)
        model = load_model(model_spec, device="cpu", dtype=dtype)
        report = init_embeddings(model, tokenizer, base_tokenizer, meta.first_new_id, config, texts)
        _save(model, model_spec, tokenizer_dir, output_dir, overwrite, inputs, report)
    return report


def _distill_texts(config: InitConfig, meta, tokenizer_dir: Path) -> list[str] | None:
    """The contexts of ``--method distill``: ``--corpus``, else a corpus the merge metadata names."""
    if config.method != "distill":
        return None
    corpus = config.corpus or meta.corpus
    if not corpus:
        raise VocabExtendError(f"--method distill needs --corpus SPEC (text in which the new tokens occur): "
                               f"{tokenizer_dir}/vocab_extend.json names no training corpus")
    if not config.corpus:
        missing = [spec for spec in corpus if not spec.startswith("hf:") and not glob.glob(spec)]
        if missing:
            raise VocabExtendError(f"--method distill reads the merge's training corpus {missing[0]} (named in "
                                   f"{tokenizer_dir}/vocab_extend.json), which is not here: pass --corpus SPEC")
    budget = (config.distill or DistillConfig()).max_corpus_bytes
    specs = [corpus] if isinstance(corpus, str) else list(corpus)
    return [text for spec in specs for text in read_documents(spec, max_bytes=budget)]


def _save(model, model_spec: str, tokenizer_dir: Path, output_dir: Path, overwrite: bool,
          inputs: list[tuple[str, object]], report: InitReport) -> None:
    with staging_folder(output_dir, overwrite, inputs) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copyfile(tokenizer_dir / name, tmp / name)
        data = {"model": model_spec, "tokenizer": str(tokenizer_dir), **asdict(report)}
        (tmp / REPORT_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _card(model_spec, tokenizer_dir, output_dir, report).save(tmp / CARD_FILE)
        usual_modes(tmp)


def _card(model_spec: str, tokenizer_dir: Path, output_dir: Path, report: InitReport):
    meta = read_metadata(tokenizer_dir)
    made = [
        f"base model: `{model_spec}`; base tokenizer: `{meta.base}` ({meta.base_kind})",
        f"tokenizer: {meta.added_pieces:,} {meta.lang} pieces appended after the base's {meta.first_new_id:,} "
        "ids (every base id, piece and base-language segmentation unchanged)",
        f"embeddings: {report.embedding_size:,} rows ({report.new_tokens:,} new, {report.padding_rows:,} padding), "
        f"new rows initialised with `{report.method}`; base rows bit-identical; "
        f"{'tied' if report.tied else 'untied'} input/output embeddings",
        "not trained yet: continue pretraining on new-language text (`vocab-extend pretrain`) before use",
    ]
    # the output folder is not named: the same inputs give the same card wherever it is written
    command = (f"vocab-extend init-model --model {model_spec} --tokenizer {tokenizer_dir} --method {report.method} "
               "--output-dir OUTPUT")
    return render_card(title=f"{model_spec} with a {meta.lang} vocabulary",
                       base=model_spec, lang=meta.lang, made=made, tokenizer_report=read_tokenizer_report(tokenizer_dir),
                       bpb=None, commands=[command])


# ---------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="base model: HF folder, Hub id, .gguf file or alias smollm2-135m")
    parser.add_argument("--tokenizer", required=True, type=Path,
                        help="extended tokenizer folder written by `vocab-extend merge`")
    parser.add_argument("--method", choices=METHODS, default="mean",
                        help="new rows: mean of their base pieces' rows (default), first (output rows from the "
                             "first piece), hewitt (mean of all rows + tiny noise), random (N(0, init range)), "
                             "distill (mean, then distilled from the base model on --corpus)")
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
