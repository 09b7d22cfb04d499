"""Embedding resize + initialisation on pico models with a real merged Japanese tokenizer."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import SAMPLE_EN, SAMPLE_JA, pico_llama_config
from vocab_extend.cli import main
from vocab_extend.model.init.embeddings import InitConfig, decompose, init_embeddings
from vocab_extend.model.init.job import init_model
from vocab_extend.errors import VocabExtendError

PAD = 64


@pytest.fixture(scope="session")
def extended_dir(tmp_path_factory):
    """Mistral's tokenizer extended with ~800 Japanese pieces trained on the bundled sample."""
    from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer

    folder = tmp_path_factory.mktemp("extended") / "mistral-ja"
    extend_tokenizer(ExtendConfig(new_model_size=2000, output_dir=folder, pad_to_multiple_of=PAD))
    return folder


@pytest.fixture(scope="session")
def tokenizers(extended_dir):
    from transformers import AutoTokenizer

    from vocab_extend.metadata import read_metadata
    from vocab_extend.tokenizer.loader import load_base_tokenizer

    meta = read_metadata(extended_dir)
    return AutoTokenizer.from_pretrained(str(extended_dir)), load_base_tokenizer(extended_dir), meta.base_vocab_size


def _pico(vocab_size: int, *, tied: bool = False, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(pico_llama_config(vocab_size, tie_word_embeddings=tied)).eval()


def _snapshot(model):
    return model.get_input_embeddings().weight.detach().clone(), model.get_output_embeddings().weight.detach().clone()


def _lines(path, n):
    return path.read_text(encoding="utf-8").splitlines()[:n]


def test_decompose_splits_new_pieces_into_base_pieces(tokenizers):
    tokenizer, base, base_size = tokenizers
    d = decompose(tokenizer, base, base_size)
    assert len(d.pieces) == len(tokenizer) - base_size
    by_piece = dict(zip(tokenizer.convert_ids_to_tokens(list(range(base_size, len(tokenizer)))), d.pieces))
    assert base.convert_ids_to_tokens(by_piece["ます"]) == ["ま", "す"]
    # the bare ▁ the base puts in front of a word-initial piece is dropped ...
    assert base.convert_ids_to_tokens(base.backend_tokenizer.model.tokenize("▁「")[0].id) == "▁"
    assert base.convert_ids_to_tokens(by_piece["▁「"]) == ["「"]
    assert d.whitespace_dropped >= 1
    # ... while byte-fallback pieces are kept: a character the base lacks is the mean of its UTF-8 bytes
    byte_only = [p for p, ids in by_piece.items() if base.convert_ids_to_tokens(ids)[0].startswith("<0x")]
    assert byte_only and d.byte_tokens >= len(byte_only)
    piece = next(p for p in byte_only if len(p) == 1)
    expected = [f"<0x{b:02X}>" for b in piece.encode("utf-8")]
    assert base.convert_ids_to_tokens(by_piece[piece]) == expected
    # every piece's text is rebuilt by its base pieces (bytes decoded, dropped ▁ put back)
    for piece, ids in by_piece.items():
        text = base.decode(ids)
        assert text == piece.replace("▁", " ").strip() or piece.startswith("▁") and text == piece[1:]


@pytest.mark.parametrize("method", ["mean", "first", "hewitt", "random"])
def test_untied_old_rows_bit_identical_and_sizes_agree(tokenizers, method):
    tokenizer, base, base_size = tokenizers
    model = _pico(base_size)
    old_in, old_out = _snapshot(model)
    report = init_embeddings(model, tokenizer, base, base_size, InitConfig(method=method, pad_to_multiple_of=PAD))
    new_in, new_out = _snapshot(model)
    rows = -(-len(tokenizer) // PAD) * PAD
    assert new_in.shape[0] == new_out.shape[0] == model.config.vocab_size == rows == report.embedding_size
    assert report.padding_rows == rows - len(tokenizer) and report.new_tokens == len(tokenizer) - base_size
    assert torch.equal(new_in[:base_size], old_in) and torch.equal(new_out[:base_size], old_out)
    assert not report.tied and model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    # padding rows: the mean of the base rows
    for new, old in ((new_in, old_in), (new_out, old_out)):
        assert torch.allclose(new[len(tokenizer):], old.mean(0).expand(rows - len(tokenizer), -1), atol=1e-7)
    assert torch.isfinite(new_in).all() and torch.isfinite(new_out).all()


def test_mean_and_first_known_rows(tokenizers):
    tokenizer, base, base_size = tokenizers
    ids = {p: tokenizer.convert_tokens_to_ids(p) for p in ("ます", "▁「")}
    ma, su, kagi = base.convert_tokens_to_ids(["ま", "す", "「"])
    for method in ("mean", "first"):
        model = _pico(base_size, seed=4)
        old_in, old_out = _snapshot(model)
        init_embeddings(model, tokenizer, base, base_size, InitConfig(method=method))
        new_in, new_out = _snapshot(model)
        assert torch.allclose(new_in[ids["ます"]], (old_in[ma] + old_in[su]) / 2, atol=1e-7)
        assert torch.equal(new_in[ids["▁「"]], old_in[kagi])
        expected_out = (old_out[ma] + old_out[su]) / 2 if method == "mean" else old_out[ma]
        assert torch.allclose(new_out[ids["ます"]], expected_out, atol=1e-7)


def test_hewitt_is_near_the_mean_and_seeded(tokenizers):
    tokenizer, base, base_size = tokenizers
    results = []
    for seed in (0, 0, 1):
        model = _pico(base_size)
        old_in, _ = _snapshot(model)
        init_embeddings(model, tokenizer, base, base_size, InitConfig(method="hewitt", seed=seed))
        new_rows = model.get_input_embeddings().weight[base_size:len(tokenizer)].detach()
        assert torch.allclose(new_rows, old_in.mean(0).expand_as(new_rows), atol=1e-4)
        results.append(new_rows.clone())
    assert torch.equal(results[0], results[1]) and not torch.equal(results[0], results[2])


def test_random_rows_follow_initializer_range(tokenizers):
    tokenizer, base, base_size = tokenizers
    model = _pico(base_size)
    init_embeddings(model, tokenizer, base, base_size, InitConfig(method="random"))
    rows = model.get_input_embeddings().weight[base_size:len(tokenizer)].detach()
    assert rows.mean().abs() < 0.002
    assert rows.std().item() == pytest.approx(model.config.initializer_range, rel=0.1)


def test_tied_model_keeps_one_matrix_and_first_means_mean(tokenizers):
    tokenizer, base, base_size = tokenizers
    rows = {}
    for method in ("mean", "first"):
        model = _pico(base_size, tied=True)
        old, _ = _snapshot(model)
        report = init_embeddings(model, tokenizer, base, base_size, InitConfig(method=method))
        weight = model.get_input_embeddings().weight
        assert report.tied and model.get_output_embeddings().weight is weight
        assert weight.shape[0] == model.config.vocab_size == len(tokenizer)
        assert torch.equal(weight[:base_size].detach(), old)
        assert ("first" in " ".join(report.notes)) == (method == "first")
        rows[method] = weight.detach().clone()
    assert torch.equal(rows["mean"], rows["first"])


def test_base_text_logits_unchanged_and_padding_takes_almost_nothing(tokenizers):
    """On English (no new token) the base ids' logits are as before; each padding row gets at most 1/V."""
    tokenizer, base, base_size = tokenizers
    model = _pico(base_size, seed=5)
    texts = _lines(SAMPLE_EN / "sample.txt", 4) + _lines(SAMPLE_JA / "news.txt", 2)
    batches = [torch.tensor([base(t)["input_ids"]]) for t in texts]
    with torch.no_grad():
        before = [model(input_ids=b).logits for b in batches]
    init_embeddings(model, tokenizer, base, base_size, InitConfig(method="mean", pad_to_multiple_of=PAD))
    with torch.no_grad():
        for text, batch, old in zip(texts, batches, before):
            logits = model(input_ids=batch).logits
            assert torch.allclose(logits[..., :base_size], old, atol=1e-5)
            probs = logits.softmax(-1)
            assert (probs[..., len(tokenizer):] <= 1 / base_size + 1e-9).all()


def test_init_model_writes_a_loadable_folder_that_generates(tmp_path, extended_dir, tokenizers):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, base, base_size = tokenizers
    _pico(base_size).save_pretrained(tmp_path / "base-model")
    out = tmp_path / "extended-model"
    report = init_model(str(tmp_path / "base-model"), extended_dir, out, InitConfig(method="mean"))
    assert (out / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    model = AutoModelForCausalLM.from_pretrained(str(out))
    loaded = AutoTokenizer.from_pretrained(str(out))
    assert model.config.vocab_size == report.embedding_size == model.get_output_embeddings().weight.shape[0]
    assert report.embedding_size % PAD == 0  # the merge's pad_to_multiple_of is the default
    text = _lines(SAMPLE_JA / "conversation.txt", 1)[0]
    ids = loaded(text)["input_ids"]
    assert ids == tokenizer(text)["input_ids"] and max(ids) >= base_size
    assert loaded.decode(ids, skip_special_tokens=True) == text
    generated = model.generate(torch.tensor([ids]), max_new_tokens=5, do_sample=False,
                               pad_token_id=loaded.eos_token_id)
    assert generated.shape[1] == len(ids) + 5 and int(generated.max()) < len(tokenizer)
    saved = json.loads((out / "init_embeddings.json").read_text(encoding="utf-8"))
    assert saved["method"] == "mean" and saved["new_tokens"] == len(tokenizer) - base_size


def test_checkpoint_dtype_is_kept_and_base_rows_stay_bit_identical(tmp_path, extended_dir, tokenizers):
    from safetensors.torch import load_file

    base_size = tokenizers[2]
    model = _pico(base_size).to(torch.bfloat16)
    model.save_pretrained(tmp_path / "bf16")
    before = load_file(str(tmp_path / "bf16" / "model.safetensors"))
    rng = torch.get_rng_state()
    init_model(str(tmp_path / "bf16"), extended_dir, tmp_path / "out", InitConfig(method="random"))
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's random state is left alone
    after = load_file(str(tmp_path / "out" / "model.safetensors"))
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert after[name].dtype == torch.bfloat16
        assert torch.equal(after[name][:base_size], before[name])
    assert all(torch.equal(after[k], v) for k, v in before.items() if "embed" not in k and "lm_head" not in k)


def test_same_inputs_give_byte_identical_outputs(tmp_path, extended_dir, tokenizers):
    _pico(tokenizers[2], tied=True).save_pretrained(tmp_path / "base-model")
    outs = []
    for name in ("a", "b"):
        code = main(["init-model", "--model", str(tmp_path / "base-model"), "--tokenizer", str(extended_dir),
                     "--method", "hewitt", "--output-dir", str(tmp_path / name)])
        assert code == 0
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir()) if p.name != "init_embeddings.json"})
    assert outs[0].keys() == outs[1].keys() and outs[0] == outs[1]


def test_bad_inputs(tmp_path, extended_dir, tokenizers, capsys):
    tokenizer, base, base_size = tokenizers
    with pytest.raises(VocabExtendError, match="embedding rows"):
        init_embeddings(_pico(1000), tokenizer, base, base_size)
    with pytest.raises(VocabExtendError, match="not the model whose tokenizer the merge extended"):
        init_embeddings(_pico(49152), tokenizer, base, base_size)  # a model of another vocabulary
    with pytest.raises(VocabExtendError, match="method"):
        InitConfig(method="zeros")
    _pico(base_size).save_pretrained(tmp_path / "m")
    (tmp_path / "exists").mkdir()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    for argv in (
        ["--model", str(tmp_path / "m"), "--tokenizer", str(extended_dir), "--output-dir", str(tmp_path / "file" / "o")],
        ["--model", str(tmp_path / "m"), "--tokenizer", str(tmp_path / "m"), "--output-dir", str(tmp_path / "o")],
        ["--model", str(tmp_path / "m"), "--tokenizer", str(extended_dir), "--output-dir", str(tmp_path / "exists")],
        ["--model", str(tmp_path / "missing"), "--tokenizer", str(extended_dir), "--output-dir", str(tmp_path / "o")],
    ):
        capsys.readouterr()
        assert main(["init-model", *argv]) == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "o").exists()


def test_every_init_method_has_its_help_line_and_runs(tokenizers):
    """The registry (methods.py) and the names the command line lists without torch (config.py) agree."""
    from vocab_extend.model.init.config import METHOD_HELP
    from vocab_extend.model.init.methods import METHODS

    assert list(METHODS) == list(METHOD_HELP)
    tokenizer, base, base_size = tokenizers
    for name, method in METHODS.items():
        if method.refine is not None:
            continue
        model = _pico(base_size)
        init_embeddings(model, tokenizer, base, base_size, InitConfig(method=name, pad_to_multiple_of=PAD))
        assert torch.isfinite(model.get_output_embeddings().weight).all()
