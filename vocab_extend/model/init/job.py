"""``init-model``'s job: load a model, resize it to an extended tokenizer, save model + tokenizer + card.

The rules for the new rows are in :mod:`.embeddings` (the methods in :mod:`.methods`); the command line is
:mod:`.cli`. Invariants: the output folder appears complete or not at all (written in a staging folder and
renamed), no input is ever replaced, and the same inputs give byte-identical files (the card does not name
the output folder).
"""

from __future__ import annotations

import glob
import json
from dataclasses import asdict
from pathlib import Path

from ...atomic import usual_modes
from ...corpus import read_documents
from ...errors import VocabExtendError
from ...locks import output_lock
from ...staging import check_output_dir, staging_folder
from ...tokenizer.folder import TokenizerFolder
from ..card import CARD_FILE, read_tokenizer_report, render_card
from ..loading import load_model
from .config import InitConfig
from .distill import DistillConfig
from .embeddings import InitReport, init_embeddings
from .methods import METHODS

REPORT_FILE = "init_embeddings.json"


def init_model(model_spec: str, tokenizer_dir: Path, output_dir: Path, config: InitConfig | None = None, *,
               overwrite: bool = False, dtype: str = "checkpoint") -> InitReport:
    """Load ``model_spec``, extend it to the tokenizer in ``tokenizer_dir`` and save model + tokenizer.

    The folder is written with safetensors through ``save_pretrained`` into a temporary folder beside
    ``output_dir`` and renamed into place at the end, so a failure leaves nothing half-written.
    """
    config = config or InitConfig()
    tokenizer_dir = Path(tokenizer_dir)
    folder = TokenizerFolder.open(tokenizer_dir)  # vocab_extend.json read, and the family picked, once
    meta = folder.merged
    if config.pad_to_multiple_of is None:
        config.pad_to_multiple_of = meta.pad_to_multiple_of
    output_dir = Path(output_dir)
    inputs = [("tokenizer", tokenizer_dir), ("model", model_spec)]
    if config.corpus:
        inputs.append(("corpus", config.corpus))
    check_output_dir(output_dir, overwrite, inputs)
    with output_lock(output_dir):  # held from before loading, so a second writer is refused at once
        texts = _distill_texts(config, meta, tokenizer_dir)  # before the model: a bad corpus fails fast
        tokenizer = folder.load()
        base_tokenizer = folder.load_base()
        model = load_model(model_spec, device="cpu", dtype=dtype)
        report = init_embeddings(model, tokenizer, base_tokenizer, meta.first_new_id, config, texts)
        _save(model, model_spec, folder, output_dir, overwrite, inputs, report)
    return report


def _distill_texts(config: InitConfig, meta, tokenizer_dir: Path) -> list[str] | None:
    """The contexts of ``--method distill``: ``--corpus``, else a corpus the merge metadata names."""
    if METHODS[config.method].refine is None:
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


def _save(model, model_spec: str, folder: TokenizerFolder, output_dir: Path, overwrite: bool,
          inputs: list[tuple[str, object]], report: InitReport) -> None:
    with staging_folder(output_dir, overwrite, inputs) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        folder.copy_into(tmp)
        data = {"model": model_spec, "tokenizer": str(folder.path), **asdict(report)}
        (tmp / REPORT_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _card(model_spec, folder, report).save(tmp / CARD_FILE)
        usual_modes(tmp)


def _card(model_spec: str, folder: TokenizerFolder, report: InitReport):
    meta, tokenizer_dir = folder.merged, folder.path
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
