"""Bits per byte: known answers on pico models, windowing, truncation, the CLI and bad inputs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import SAMPLE_EN, SAMPLE_JA, pico_llama_config
from vocab_extend.cli import main
from vocab_extend.errors import VocabExtendError
from vocab_extend.model.evaluate.bpb import bits_per_byte, truncate_to_bytes, windows


@pytest.fixture(scope="session")
def base_tokenizer_dir(tmp_path_factory):
    """The Mistral base tokenizer exported as a Hugging Face folder (adds BOS, like the merged ones)."""
    from vocab_extend.tokenizer.loader import load_tokenizer

    folder = tmp_path_factory.mktemp("mistral-tokenizer")
    load_tokenizer("mistral-7b-v0.1").save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def base_tokenizer(base_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base_tokenizer_dir))


def _pico(vocab_size: int, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(pico_llama_config(vocab_size)).eval()


@pytest.fixture(scope="module")
def en_texts():
    return SAMPLE_EN.joinpath("sample.txt").read_text(encoding="utf-8").splitlines()[:12]


@pytest.fixture(scope="module")
def ja_texts():
    return SAMPLE_JA.joinpath("news.txt").read_text(encoding="utf-8").splitlines()[:6]


def test_uniform_model_costs_log_vocab_per_token(base_tokenizer, en_texts):
    """Zero output weights give uniform predictions: NLL is exactly ln V per scored token, BOS not scored."""
    vocab = len(base_tokenizer)
    model = _pico(vocab)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    result = bits_per_byte(model, base_tokenizer, en_texts, progress=False)
    expected_tokens = sum(len(ids) for ids in base_tokenizer(en_texts, add_special_tokens=False)["input_ids"])
    expected_bytes = sum(len(t.encode("utf-8")) for t in en_texts)
    assert result.tokens == expected_tokens
    assert result.bytes == expected_bytes
    assert result.loss == pytest.approx(math.log(vocab), rel=1e-6)
    assert result.bpb == pytest.approx(expected_tokens * math.log(vocab) / (math.log(2) * expected_bytes), rel=1e-6)


def test_matches_transformers_loss_on_one_document(base_tokenizer, ja_texts):
    """One short document in one window: our mean NLL is transformers' own causal-LM loss with BOS in front."""
    model = _pico(len(base_tokenizer), seed=1)
    text = ja_texts[0]
    ids = torch.tensor([base_tokenizer(text)["input_ids"]])  # the exported tokenizer adds BOS
    assert ids[0, 0].item() == base_tokenizer.bos_token_id
    with torch.no_grad():
        reference = model(input_ids=ids, labels=ids).loss.item()
    result = bits_per_byte(model, base_tokenizer, [text], progress=False)
    assert result.tokens == ids.shape[1] - 1
    assert result.loss == pytest.approx(reference, rel=1e-5)
    assert result.bpb == pytest.approx(reference * result.tokens / (math.log(2) * len(text.encode("utf-8"))), rel=1e-5)


def test_batching_and_padding_do_not_change_the_result(base_tokenizer, en_texts, ja_texts):
    model = _pico(len(base_tokenizer), seed=2)
    texts = en_texts + ja_texts
    one = bits_per_byte(model, base_tokenizer, texts, batch_size=1, progress=False)
    many = bits_per_byte(model, base_tokenizer, texts, batch_size=7, progress=False)
    assert (one.tokens, one.bytes) == (many.tokens, many.bytes)
    assert many.nll_sum == pytest.approx(one.nll_sum, rel=1e-5)


def test_sliding_windows_score_each_token_once_with_context():
    """Past the first window every scored token has at least block_size - stride tokens before it."""
    ids = list(range(100, 123))
    chunks = windows(ids, 1, block_size=8, stride=3)
    assert chunks[0] == ([1, *ids[:7]], 7)
    scored = [t for window, count in chunks for t in window[len(window) - count:]]
    assert scored == ids  # every token once, in order
    for window, count in chunks[1:]:
        assert len(window) == 8 and window == ids[ids.index(window[0]) : ids.index(window[0]) + 8]
        assert len(window) - count >= 8 - 3


def test_windows_score_every_token_once(base_tokenizer, ja_texts):
    """Short windows score the same tokens as one long window, with less context."""
    model = _pico(len(base_tokenizer), seed=3)
    long = bits_per_byte(model, base_tokenizer, ja_texts, block_size=256, progress=False)
    short = bits_per_byte(model, base_tokenizer, ja_texts, block_size=5, progress=False)
    assert short.tokens == long.tokens and short.bytes == long.bytes
    assert short.nll_sum != long.nll_sum
    with torch.no_grad():
        model.lm_head.weight.zero_()
    uniform = bits_per_byte(model, base_tokenizer, ja_texts, block_size=5, progress=False)
    assert uniform.loss == pytest.approx(math.log(len(base_tokenizer)), rel=1e-6)


def test_restores_training_mode_and_leaves_no_gradients(base_tokenizer, en_texts):
    model = _pico(len(base_tokenizer)).train()
    bits_per_byte(model, base_tokenizer, en_texts[:2], progress=False)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    bits_per_byte(model, base_tokenizer, en_texts[:2], progress=False)
    assert not model.training


def test_max_bytes_truncates_deterministically(base_tokenizer, ja_texts):
    kept = truncate_to_bytes(ja_texts, 100)
    assert len("".join(kept).encode("utf-8")) <= 100
    assert len("".join(kept).encode("utf-8")) > 100 - 4  # cut at a character boundary, at most 3 bytes short
    assert kept[0] == ja_texts[0][: len(kept[0])]
    model = _pico(len(base_tokenizer))
    a = bits_per_byte(model, base_tokenizer, ja_texts, max_bytes=100, progress=False)
    b = bits_per_byte(model, base_tokenizer, kept, progress=False)
    assert a == b


@pytest.mark.parametrize(
    "kwargs, texts",
    [({}, []), ({}, ["", ""]), ({"block_size": 1}, ["abc"]), ({"max_bytes": 0}, ["abc"]), ({"batch_size": 0}, ["a"]),
     ({"block_size": 512}, ["abc"]), ({"block_size": 8, "stride": 8}, ["abc"]), ({"block_size": 8, "stride": 0}, ["abc"])],
)
def test_bad_inputs_raise_one_sentence(base_tokenizer, kwargs, texts):
    model = _pico(len(base_tokenizer))
    with pytest.raises(VocabExtendError):
        bits_per_byte(model, base_tokenizer, texts, progress=False, **kwargs)


def test_cli_scores_each_corpus_and_writes_json(tmp_path, base_tokenizer_dir, base_tokenizer, capsys):
    model = _pico(len(base_tokenizer))
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "bpb.json"
    code = main([
        "evaluate-bpb", "--model", str(tmp_path / "model"), "--tokenizer", str(base_tokenizer_dir),
        "--corpus", f"ja={SAMPLE_JA}", "--corpus", f"en={SAMPLE_EN}", "--max-bytes", "3000",
        "--json", str(out), "--no-progress",
    ])
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["results"]) == {"ja", "en"}
    for name in ("ja", "en"):
        entry = report["results"][name]
        assert 2990 < entry["bytes"] <= 3000
        assert entry["bpb"] == pytest.approx(entry["nll_sum"] / (math.log(2) * entry["bytes"]))
    assert "ja:" in capsys.readouterr().out


def test_cli_bad_model_and_corpus_exit_2(tmp_path, capsys):
    assert main(["evaluate-bpb", "--model", str(tmp_path / "nope"), "--corpus", f"ja={SAMPLE_JA}"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["evaluate-bpb", "--model", str(tmp_path), "--corpus", f"ja={tmp_path / 'missing.txt'}"]) == 2
    assert "error:" in capsys.readouterr().err


def test_tokenizer_larger_than_the_model_is_one_sentence(base_tokenizer, en_texts):
    with pytest.raises(VocabExtendError, match="init-model"):
        bits_per_byte(_pico(1000), base_tokenizer, en_texts[:2], progress=False)


def test_model_made_for_another_vocabulary_is_one_sentence(base_tokenizer, en_texts):
    with pytest.raises(VocabExtendError, match="not the tokenizer this model was made for"):
        bits_per_byte(_pico(len(base_tokenizer) + 5000), base_tokenizer, en_texts[:2], progress=False)


def test_text_that_spells_a_special_token_is_scored_as_text(base_tokenizer):
    model = _pico(len(base_tokenizer))
    result = bits_per_byte(model, base_tokenizer, ["a</s>b"], progress=False)
    assert result.tokens == len(base_tokenizer("a</s>b", add_special_tokens=False, split_special_tokens=True)["input_ids"])
    assert result.tokens > 3


def test_cli_json_folder_and_missing_gpu_are_one_sentence(tmp_path, capsys):
    code = main(["evaluate-bpb", "--model", str(tmp_path), "--corpus", f"ja={SAMPLE_JA}", "--json", str(tmp_path)])
    assert code == 2 and "is a folder" in capsys.readouterr().err
    if not torch.cuda.is_available():
        code = main(["evaluate-bpb", "--model", str(tmp_path), "--corpus", f"ja={SAMPLE_JA}", "--device", "cuda"])
        assert code == 2 and "torch sees none" in capsys.readouterr().err


def test_sentencepiece_alias_loads_as_a_tokenizer_that_matches_sentencepiece(base_tokenizer):
    import sentencepiece as spm

    from vocab_extend.families import resolve_tokenizer
    from vocab_extend.tokenizer.loader import load_tokenizer

    tokenizer = load_tokenizer("mistral-7b-v0.1")
    sp = spm.SentencePieceProcessor(model_file=str(resolve_tokenizer().path))
    text = "東京の天気 and  the weather 2024"
    assert tokenizer(text)["input_ids"] == [sp.bos_id()] + sp.encode(text)
    assert len(tokenizer) == len(base_tokenizer) == 32000


def test_model_folder_without_a_tokenizer_is_one_sentence(tmp_path, capsys):
    _pico(1000).save_pretrained(tmp_path / "model")
    assert main(["evaluate-bpb", "--model", str(tmp_path / "model"), "--corpus", f"ja={SAMPLE_JA}"]) == 2
    assert "holds no tokenizer" in capsys.readouterr().err
