"""The one tokenizer loader: every command that needs a Hugging Face tokenizer gets it here.

``load_tokenizer(spec)`` takes what ``--tokenizer``/``--model`` take: a folder written by ``vocab-extend
merge`` or ``init-model`` (or any Hugging Face folder), a SentencePiece ``.model`` file or a folder holding
only one, a ``tokenizer.json``, a GGUF file, a bundled alias or a Hub id. SentencePiece models are built in
memory with the merge's own ``tokenizer.json`` builder, so they add BOS and segment exactly as SentencePiece
does (transformers' own conversion of a bare ``tokenizer.model`` does neither).

``load_base_tokenizer(folder)`` rebuilds the base tokenizer of an extended folder, offline: its family
(named in ``vocab_extend.json``) cuts the extended tokenizer back to the base's ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..console import quiet_transformers
from ..errors import VocabExtendError
from .. import hub
from ..families import get_family
from ..metadata import read_metadata
from ..sources import ALIASES, ModelSource, resolve_model, resolve_tokenizer


def _sentencepiece(spec: str) -> Any:
    family = get_family("sentencepiece")
    return family.base_hf(family.load_base(resolve_tokenizer(spec, "tokenizer")))


def load_tokenizer(spec: str) -> Any:
    """The Hugging Face tokenizer named by ``spec``; one sentence when there is none."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    quiet_transformers()
    path = Path(spec).expanduser()
    if spec in ALIASES and ALIASES[spec][0] == "sentencepiece":
        return _sentencepiece(spec)
    if path.is_file() and path.suffix == ".model":
        if resolve_tokenizer(spec, "tokenizer").family != "sentencepiece":
            raise VocabExtendError(f"{spec} is not a SentencePiece model")
        return _sentencepiece(spec)
    if path.is_file() and path.suffix == ".json" and path.name != "tokenizer.json":
        try:
            return PreTrainedTokenizerFast(tokenizer_file=str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on a foreign file
            raise VocabExtendError(f"{path} is not a tokenizers JSON file ({exc})") from None
    if path.is_file() and path.name == "tokenizer.json":
        path, spec = path.parent, str(path.parent)
    if path.is_dir() and (path / "tokenizer.json").is_file():
        source = ModelSource(spec, str(path))
    elif path.is_dir() and (path / "tokenizer.model").is_file() and resolve_tokenizer(spec).family == "sentencepiece":
        return _sentencepiece(spec)  # not transformers' conversion of a bare tokenizer.model
    elif path.is_dir() and (path / "tokenizer_config.json").is_file():
        source = ModelSource(spec, str(path))
    elif path.is_dir() and not any(path.glob("*.gguf")):
        raise VocabExtendError(f"folder {spec} holds no tokenizer (tokenizer.json, tokenizer.model or a .gguf): "
                               "pass --tokenizer with the folder the merge wrote")
    else:
        source = resolve_model(spec)
    kwargs = source.pretrained_kwargs()
    offline = None if Path(source.folder).is_dir() else hub.unreachable_reason()  # a Hub id without network
    if offline is not None:
        kwargs["local_files_only"] = True
    try:
        return AutoTokenizer.from_pretrained(source.folder, **kwargs)
    except Exception as exc:  # a foreign or damaged file raises KeyError, TypeError... as well as OSError
        if isinstance(exc, (KeyboardInterrupt, MemoryError)):
            raise
        if offline is not None:
            raise VocabExtendError(
                f"could not load the tokenizer of {spec!r}: the Hub cannot be reached ({offline}) and it is not in "
                "the local Hub cache; connect, or give --tokenizer with a local folder") from None
        raise VocabExtendError(
            f"could not load the tokenizer of {spec!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "give --tokenizer with a folder holding tokenizer.json"
        ) from None


def load_base_tokenizer(folder: str | Path) -> Any:
    """The base tokenizer of an extended tokenizer folder, as a Hugging Face tokenizer; no network needed."""
    meta = read_metadata(folder)
    return get_family(meta.base_kind).base_of_extended(Path(folder), meta.first_new_id)
