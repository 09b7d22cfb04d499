"""The Hugging Face settings of a tokenizer: read from a base, written unchanged beside the extension.

The extended tokenizer is the base tokenizer plus pieces. Every setting of the base's tokenizer files —
``tokenizer_config.json`` (chat template, special and added tokens, pad/unk/bos/eos, ``model_max_length``,
``padding_side``, ``add_bos_token``/``add_eos_token``, ``clean_up_tokenization_spaces``, …),
``special_tokens_map.json`` and ``chat_template.jinja`` — is carried over unchanged, with one exception:
``tokenizer_class`` becomes ``PreTrainedTokenizerFast``, because a slow-tokenizer class such as
``LlamaTokenizer`` would rebuild the tokenizer from ``tokenizer.model`` and ignore the ``tokenizer.json`` that
holds the merge. A base without such files (a bare ``.model``, a ``tokenizer.json`` alone, a GGUF file) gets
the settings its family derives from the tokenizer itself.

:func:`write_hf_files` is the one writer of these files for both families.

>>> config = tokenizer_config({"tokenizer_class": "LlamaTokenizer", "model_max_length": 32768}, {})
>>> config["tokenizer_class"], config["model_max_length"]
('PreTrainedTokenizerFast', 32768)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .jsonfile import read_json_object

CONFIG_FILE = "tokenizer_config.json"
SPECIAL_MAP_FILE = "special_tokens_map.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
SETTINGS_FILES = (CONFIG_FILE, SPECIAL_MAP_FILE, CHAT_TEMPLATE_FILE)  # every family's folder holds these
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")
TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# transformers' "no limit" value, written when the base names none
NO_MAX_LENGTH = 1_000_000_000_000_000_019_884_624_838_656
# keys the written config may differ in from the base's (see the module docstring)
REPLACED_KEYS = ("tokenizer_class",)


@dataclass
class BaseSettings:
    """What a base folder says about its tokenizer: its config (``None``: it has no config file) and the
    other settings files, byte for byte."""

    config: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)

    def value(self, key: str, default: Any = None) -> Any:
        return (self.config or {}).get(key, default)


def read_base_settings(folder: Path) -> BaseSettings:
    """The settings files of a base tokenizer folder; a damaged config is one sentence."""
    folder = Path(folder)
    config = None
    path = folder / CONFIG_FILE
    if path.is_file():
        config = read_json_object(path, fix="fix the base's tokenizer config")
    files = {name: (folder / name).read_bytes() for name in (SPECIAL_MAP_FILE, CHAT_TEMPLATE_FILE)
             if (folder / name).is_file()}
    return BaseSettings(config, files)


def token_text(value: Any) -> str | None:
    """The text of a special-token setting, written either as a string or as an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def wrapper_kwargs(config: Mapping[str, Any] | None, files: Mapping[str, bytes] | None = None) -> dict[str, Any]:
    """Keyword arguments that give an in-memory ``PreTrainedTokenizerFast`` these settings: special tokens,
    chat template (from the config or ``chat_template.jinja``), maximum length and padding side."""
    config = config or {}
    kwargs: dict[str, Any] = {}
    for key in SPECIAL_KEYS:
        text = token_text(config.get(key))
        if text is not None:
            kwargs[key] = text
    template = config.get("chat_template")
    if template is None and files and CHAT_TEMPLATE_FILE in files:
        template = files[CHAT_TEMPLATE_FILE].decode("utf-8")
    if template is not None:
        kwargs["chat_template"] = template
    for key in ("model_max_length", "padding_side"):
        if config.get(key) is not None:
            kwargs[key] = config[key]
    return kwargs


def tokenizer_config(base_config: Mapping[str, Any] | None, derived: Mapping[str, Any]) -> dict[str, Any]:
    """The config to write: the base's own (every key kept) when it has one, else the derived settings."""
    config = dict(base_config) if base_config is not None else dict(derived)
    config["tokenizer_class"] = TOKENIZER_CLASS
    return config


def special_tokens_map(config: Mapping[str, Any]) -> dict[str, Any]:
    """``special_tokens_map.json`` for a config without one: its bos/eos/unk/pad settings."""
    return {key: config[key] for key in SPECIAL_KEYS if config.get(key) is not None}


def write_json(path: Path, data: object) -> None:
    """JSON as every output of this project writes it: sorted keys, UTF-8, a final newline."""
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_hf_files(folder: Path, base: BaseSettings, derived: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``tokenizer_config.json``, ``special_tokens_map.json`` (and the base's chat template file);
    return the config written."""
    folder = Path(folder)
    config = tokenizer_config(base.config, derived)
    write_json(folder / CONFIG_FILE, config)
    if SPECIAL_MAP_FILE in base.files:
        (folder / SPECIAL_MAP_FILE).write_bytes(base.files[SPECIAL_MAP_FILE])
    else:
        write_json(folder / SPECIAL_MAP_FILE, special_tokens_map(config))
    if CHAT_TEMPLATE_FILE in base.files:
        (folder / CHAT_TEMPLATE_FILE).write_bytes(base.files[CHAT_TEMPLATE_FILE])
    return config

