"""The one tokenizer loader: every command that needs a Hugging Face tokenizer gets it here.

``load_tokenizer(spec)`` takes what ``--tokenizer``/``--model`` take: a folder written by ``vocab-extend
merge`` or ``init-model`` (or any Hugging Face folder), a base tokenizer file some family reads (a
SentencePiece ``.model``, a GGUF file) or a folder holding only one, a ``tokenizer.json``, a bundled alias or
a Hub id. A folder with a ``tokenizer.json`` is read by transformers as it is; a base file is read by the
family that claims it (:meth:`~vocab_extend.families.interface.Family.load_hf`), so a SentencePiece model adds
BOS and segments exactly as SentencePiece does.

``load_base_tokenizer(folder)`` rebuilds the base tokenizer of an extended folder, offline: its family
(named in ``vocab_extend.json``) cuts the extended tokenizer back to the base's ids.
"""

from __future__ import annotations

from pathlib import Path

from ..console import quiet_transformers
from ..errors import VocabExtendError
from .. import hub
from ..families import claim_folder, get_family, resolve_tokenizer
from ..families.interface import HFTokenizer, TokenizerSource
from ..metadata import METADATA_FILE
from ..sources import ALIASES, ModelSource, resolve_model
from .folder import TokenizerFolder

HF_TOKENIZER_FILE = "tokenizer.json"  # what transformers reads as it is, whatever the family
HF_CONFIG_FILE = "tokenizer_config.json"


def family_source(spec: str) -> TokenizerSource | None:
    """The base tokenizer a family reads for ``spec``, when ``spec`` is not one transformers reads as it is
    (a folder with a ``tokenizer.json``, a ``.json`` file, a Hub id): a bundled alias, a base file, a folder
    a family claims. A file no family reads is one sentence; a folder no family claims gives None."""
    path = Path(spec).expanduser()
    if spec in ALIASES:
        return resolve_tokenizer(spec, "tokenizer")
    if path.is_file():
        return None if path.suffix == ".json" else resolve_tokenizer(spec, "tokenizer")
    if path.is_dir() and not (path / HF_TOKENIZER_FILE).is_file():
        return claim_folder(path, spec)
    return None


def _could_not_load(spec: str, exc: Exception) -> VocabExtendError:
    return VocabExtendError(
        f"could not load the tokenizer of {spec!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
        "give --tokenizer with a folder holding tokenizer.json"
    )


def _by_family(spec: str, source: TokenizerSource) -> HFTokenizer:
    try:
        return get_family(source.family).load_hf(source)
    except (VocabExtendError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # a foreign or damaged file raises KeyError, TypeError... as well as OSError
        raise _could_not_load(spec, exc) from None


def _model_source(spec: str, path: Path) -> ModelSource:
    if path.is_file() and path.name == HF_TOKENIZER_FILE:
        path, spec = path.parent, str(path.parent)
    if path.is_dir() and ((path / HF_TOKENIZER_FILE).is_file() or (path / HF_CONFIG_FILE).is_file()):
        return ModelSource(spec, str(path))
    if path.is_dir() and not any(path.glob("*.gguf")):
        raise VocabExtendError(f"folder {spec} holds no tokenizer (tokenizer.json, tokenizer.model or a .gguf): "
                               "pass --tokenizer with the folder the merge wrote")
    return resolve_model(spec)


def load_tokenizer(spec: str) -> HFTokenizer:
    """The Hugging Face tokenizer named by ``spec``; one sentence when there is none."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    quiet_transformers()
    path = Path(spec).expanduser()
    if path.is_dir() and (path / METADATA_FILE).is_file():  # a merge's folder, or a model folder holding one
        return TokenizerFolder.open(path).load()
    source = family_source(spec)
    if source is not None:
        return _by_family(spec, source)
    if path.is_file() and path.suffix == ".json" and path.name != HF_TOKENIZER_FILE:
        try:
            return PreTrainedTokenizerFast(tokenizer_file=str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on a foreign file
            raise VocabExtendError(f"{path} is not a tokenizers JSON file ({exc})") from None
    model = _model_source(spec, path)
    kwargs = model.pretrained_kwargs()
    offline = None if Path(model.folder).is_dir() else hub.unreachable_reason()  # a Hub id without network
    if offline is not None:
        kwargs["local_files_only"] = True
    try:
        return AutoTokenizer.from_pretrained(model.folder, **kwargs)
    except Exception as exc:  # a foreign or damaged file raises KeyError, TypeError... as well as OSError
        if isinstance(exc, (KeyboardInterrupt, MemoryError)):
            raise
        if offline is not None:
            raise VocabExtendError(
                f"could not load the tokenizer of {spec!r}: the Hub cannot be reached ({offline}) and it is not in "
                "the local Hub cache; connect, or give --tokenizer with a local folder") from None
        raise _could_not_load(spec, exc) from None


def load_base_tokenizer(folder: str | Path) -> HFTokenizer:
    """The base tokenizer of an extended tokenizer folder, as a Hugging Face tokenizer; no network needed."""
    return TokenizerFolder.open(folder).load_base()
