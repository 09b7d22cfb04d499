"""The Hugging Face folder of a trained model: what a run writes as ``model/`` and ``export-checkpoint`` writes.

One writer for both, so an exported checkpoint and a run's final model are the same kind of folder:
``model.safetensors`` + ``config.json`` (+ ``generation_config.json`` when the model has one), the
tokenizer as transformers saves it, the merge's own tokenizer files byte for byte (``tokenizer.model``,
``vocab_extend.json``...; :meth:`~vocab_extend.tokenizer.folder.TokenizerFolder.copy_into`), and the model
card ``README.md``. The caller writes into a staging folder (:func:`vocab_extend.staging.staging_folder`),
so the folder appears whole or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import usual_modes
from ..model.card import CARD_FILE
from ..tokenizer.folder import TokenizerFolder


def copy_tokenizer_files(source: Path, target: Path) -> None:
    """The merge's own tokenizer files, byte for byte, where there are any (:meth:`TokenizerFolder.copy_into`)."""
    folder = TokenizerFolder.find(source) if source.is_dir() else None
    if folder is not None:
        folder.copy_into(target)


def write_model_folder(folder: Path, model: torch.nn.Module, tokenizer: Any, tokenizer_dir: Path, card: Any) -> None:
    """Write the plain ``model`` (safetensors), ``tokenizer``, the tokenizer files of ``tokenizer_dir`` and the
    model ``card`` (a ``huggingface_hub.ModelCard``) into ``folder``, with the usual file modes."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    copy_tokenizer_files(Path(tokenizer_dir), folder)
    card.save(Path(folder) / CARD_FILE)
    usual_modes(folder)
