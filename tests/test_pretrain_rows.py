"""New rows as parameters of their own: base rows bit-identical by construction, AdamW state for new rows only."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from test_pretrain import build_tokenizer, cache_dir, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.config import StageConfig
from vocab_extend.pretrain.model import build_model
from vocab_extend.pretrain.optim import make_optimizer
from vocab_extend.pretrain.rows import SplitEmbedding, SplitLinear
from vocab_extend.pretrain.stages import finish_stage, prepare_stage


def tiny(tied: bool, vocab: int = 120):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied))


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_optimizer_state_holds_only_new_row_elements_and_base_rows_stay(tied):
    base, vocab, hidden = 100, 120, 16
    model = tiny(tied, vocab)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = pico_config(".", ".", weight_decay=0.5, lr=0.1, warmup_steps=0)
    stage = StageConfig("new-rows", 5)
    prepared = prepare_stage(model, stage, base)
    assert isinstance(model.get_input_embeddings(), SplitEmbedding)
    assert isinstance(model.get_output_embeddings(), SplitLinear)
    optimizer, scheduler = make_optimizer(config.optim, stage, prepared.params, prepared.no_decay, 5)
    assert optimizer.param_groups[0]["weight_decay"] == 0.5
    ids = torch.randint(0, vocab, (2, 12))
    for _ in range(5):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    new_elements = (1 if tied else 2) * (vocab - base) * hidden  # counted by hand: 20 rows of 16, once or twice
    assert prepared.trainable == new_elements
    moments = [t for state in optimizer.state.values() for k, t in state.items() if k in ("exp_avg", "exp_avg_sq")]
    assert sum(t.numel() for t in moments) == 2 * new_elements  # two AdamW moments per new-row element
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert all(p.grad is None for p in frozen)
    plain = finish_stage(model)
    after = plain.state_dict()
    assert set(after) == set(before)
    assert type(plain.get_input_embeddings()) is torch.nn.Embedding
    assert (plain.lm_head.weight is plain.model.embed_tokens.weight) == tied
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(after[name][:base], before[name][:base])  # weight decay 0.5 and lr 0.1 did not touch them
        assert not torch.equal(after[name][base:], before[name][base:])
    for name in before:
        if "embed_tokens" not in name and "lm_head" not in name:
            assert torch.equal(after[name], before[name])


def test_new_rows_run_with_weight_decay_keeps_base_rows_and_saves_a_plain_model(cache_dir, tmp_path):
    out = tmp_path / "run"
    config = pico_config(cache_dir, out, stages=[{"name": "new-rows", "steps": 3, "lr": 3e-2, "weight_decay": 0.3}])
    pretrain(config)
    initial = build_model(config.model, build_tokenizer(config), config.seed).state_dict()
    final = load_file(str(out / "model" / "model.safetensors"))
    assert set(final) == set(initial)
    base = json.loads((out / "model" / "vocab_extend.json").read_text())["base_vocab_size"]
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(final[name][:base], initial[name][:base])
        assert not torch.equal(final[name][base:], initial[name][base:])


def test_split_embeddings_stage_gives_the_new_rows_their_own_learning_rate():
    model = tiny(False)
    config = pico_config(".", ".", lr=1e-3)
    stage = StageConfig("embeddings", 2, split_rows=True, new_rows_lr=1e-2)
    prepared = prepare_stage(model, stage, 100)
    optimizer, _ = make_optimizer(config.optim, stage, prepared.params, prepared.no_decay, 2, prepared.lr)
    by_lr = {g["lr"]: sum(p.numel() for p in g["params"]) for g in optimizer.param_groups}
    assert by_lr == {1e-3: 2 * 100 * 16, 1e-2: 2 * 20 * 16}


@pytest.mark.parametrize("stage, message", [
    (StageConfig("full", 1, split_rows=True), "split_rows is a setting of the embeddings stage"),
    (StageConfig("embeddings", 1, new_rows_lr=1e-3), "new_rows_lr needs the new rows as their own parameters"),
])
def test_split_settings_in_the_wrong_stage_are_one_sentence(stage, message):
    with pytest.raises(VocabExtendError, match=message):
        prepare_stage(tiny(False), stage, 100)
