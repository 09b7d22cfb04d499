"""Token distillation (``--method distill``) on pico LLaMA models and a real merged Japanese tokenizer."""

from __future__ import annotations

import copy
import json
import math
import shutil

import pytest
import torch

from conftest import SAMPLE_JA, pico_llama_config
from vocab_extend.cli import main
from vocab_extend.model.init.distill import DistillConfig
from vocab_extend.model.init.distill.contexts import select_contexts, token_spans
from vocab_extend.model.init.distill.passes import student_loss, teacher_pass
from vocab_extend.model.init.embeddings import InitConfig, init_embeddings
from vocab_extend.errors import VocabExtendError
from vocab_extend.model.evaluate.bpb import bits_per_byte, context_token_id

SMALL = dict(max_contexts=48, context_length=24, steps=12, batch_size=8, lr=5e-3, progress=False)  # pico: a larger lr


def _split() -> tuple[list[str], list[str]]:
    """Every tenth line of the bundled Japanese corpus is held out."""
    lines = [line for path in sorted(SAMPLE_JA.glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [x for i, x in enumerate(lines) if i % 10], [x for i, x in enumerate(lines) if not i % 10]


@pytest.fixture(scope="session")
def merged(tmp_path_factory):
    """Mistral's tokenizer extended with ~800 Japanese pieces of the bundled corpus, through the CLI."""
    from transformers import AutoTokenizer

    from vocab_extend.metadata import read_metadata
    from vocab_extend.tokenizer.loader import load_base_tokenizer

    folder = tmp_path_factory.mktemp("distill") / "mistral-ja"
    assert main(["merge", "--corpus", str(SAMPLE_JA), "--vocab-size", "2000", "--output-dir", str(folder)]) == 0
    meta = read_metadata(folder)
    return folder, AutoTokenizer.from_pretrained(str(folder)), load_base_tokenizer(folder), meta.base_vocab_size


def _pico(vocab_size: int, tied: bool, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(pico_llama_config(vocab_size, tie_word_embeddings=tied)).eval()


def _train(model, base, texts: list[str], steps: int = 200, length: int = 48, batch: int = 8):
    """A few hundred steps of next-token training on the base tokenization, so the model knows some Japanese."""
    ids = torch.tensor([i for row in base(texts, add_special_tokens=False)["input_ids"] for i in [1, *row]])
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - length, (batch,), generator=generator)
        x = torch.stack([ids[s:s + length] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="session")
def trained(merged):
    """Pico models (untied and tied) trained on the non-held-out lines; built once per session."""
    _, _, base, base_size = merged
    train, _ = _split()
    return {tied: _train(_pico(base_size, tied), base, train) for tied in (False, True)}


def _distilled(model, merged, **overrides):
    _, tokenizer, base, base_size = merged
    model = copy.deepcopy(model)
    config = InitConfig(method="distill", distill=DistillConfig(**{**SMALL, **overrides}))
    report = init_embeddings(model, tokenizer, base, base_size, config, _split()[0])
    return model, report


def _mean(model, merged):
    _, tokenizer, base, base_size = merged
    model = copy.deepcopy(model)
    init_embeddings(model, tokenizer, base, base_size, InitConfig(method="mean"))
    return model


@pytest.mark.slow
@pytest.mark.parametrize("tied", [False, True])
def test_base_rows_bit_identical_deterministic_and_absent_tokens_transferred(merged, tied):
    """Distilled rows, then the tokens no context reached: given the transfer, or ``mean`` without it; the
    distilled rows are the same either way, special tokens and padding always keep ``mean``."""
    _, tokenizer, base, base_size = merged
    model = _pico(base_size, tied, seed=3)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    first, report = _distilled(model, merged)
    second, _ = _distilled(model, merged)
    plain, plain_report = _distilled(model, merged, transfer=False)
    mean = _mean(model, merged)
    for a, b in ((first, second), (first, mean)):
        assert a.get_input_embeddings().weight.shape == b.get_input_embeddings().weight.shape
    w1, w2, wp, wm = (m.get_input_embeddings().weight.detach() for m in (first, second, plain, mean))
    o1, o2, op, om = (m.get_output_embeddings().weight.detach() for m in (first, second, plain, mean))
    assert torch.equal(w1[:base_size], old_in) and torch.equal(o1[:base_size], old_out)
    assert torch.equal(w1, w2) and torch.equal(o1, o2)  # same inputs -> bit-identical rows
    distilled = ~(wp == wm).all(1)
    assert 0 < plain_report.distill["input_rows_distilled"] == int(distilled.sum()) < len(tokenizer) - base_size
    assert plain_report.distill["rows_transferred"] == 0
    spanned = torch.tensor([s is not None for s in token_spans(tokenizer, base, base_size)])
    absent = torch.zeros(len(w1), dtype=torch.bool)
    absent[:len(tokenizer)] = spanned
    absent &= ~distilled
    absent[:base_size] = False
    assert torch.equal(w1[distilled], wp[distilled])  # the transfer leaves the distilled rows alone
    assert torch.equal(~(w1 == wm).all(1), distilled | absent)  # and moves every other new token with a span
    assert report.distill["rows_transferred"] == int(absent.sum()) > 0
    assert torch.equal(w1[len(tokenizer):], wm[len(tokenizer):])  # padding keeps the mean
    if tied:
        assert first.get_output_embeddings().weight is first.get_input_embeddings().weight
        assert report.distill["output_rows_fitted"] == 0
    else:
        assert torch.equal(~(o1 == om).all(1), distilled) and torch.equal(o1, op)  # fitted outputs only
        assert report.distill["output_rows_fitted"] == int(distilled.sum())


def test_transfer_recovers_a_linear_correction_on_rows_it_never_saw():
    """The oracle is the map itself: distilled rows that are an exact affine function of their mean rows make
    the transfer reproduce that function on unseen rows (no shrinkage); with heavy shrinkage only the
    average shift survives."""
    from vocab_extend.model.init.distill.transfer import transfer_rows

    generator = torch.Generator().manual_seed(0)
    start, others = torch.randn(40, 6, generator=generator), torch.randn(9, 6, generator=generator)
    a, b = torch.randn(6, 6, generator=generator), torch.randn(6, generator=generator)
    moved = transfer_rows(start, start @ a + b, others, ridge=0.0)
    assert torch.allclose(moved, others @ a + b, atol=1e-4)
    learned = start @ a + b
    shrunk = transfer_rows(start, learned, others, ridge=1e9)
    assert torch.allclose(shrunk, others + (learned - start).mean(0), atol=1e-4)
    assert torch.equal(transfer_rows(start[:0], learned[:0], others, ridge=1.0), others)


@pytest.mark.slow
def test_distillation_lowers_the_loss_it_optimises(merged, trained):
    _, tokenizer, base, base_size = merged
    config = DistillConfig(**SMALL)
    mean, (distilled, _) = _mean(trained[False], merged), _distilled(trained[False], merged)
    spans = token_spans(tokenizer, base, base_size)
    encoded = tokenizer(_split()[0], add_special_tokens=False)["input_ids"]
    contexts = select_contexts(encoded, spans, base_size, context_token_id(tokenizer), config)
    # the teacher reads base pieces only: the same for both models, whose base rows are identical
    teacher = teacher_pass(mean, contexts, base_size, with_logits=False, batch_size=8, progress=False)
    ids = torch.arange(base_size, len(tokenizer))
    with torch.no_grad():
        losses = [float(student_loss(m, contexts, teacher.targets, m.get_input_embeddings().weight[ids], ids,
                                     base_size)[0]) for m in (mean, distilled)]
    assert losses[1] < 0.8 * losses[0]


def test_output_loss_is_zero_exactly_when_the_student_predicts_the_same_text():
    """Base vocabulary {a, b}; the new token t spells a+b. The teacher gives p(a) = p(b) = 0.5 and
    p(b|a) = 0.4, so p(span t) = 0.2. A student giving a 0.3, b 0.5, t 0.2 predicts the same text (the next
    text starts with a with probability 0.5 either way): zero loss. Moving mass from b to t is not."""
    from vocab_extend.model.init.distill.outputs import first_pieces, output_loss

    first = first_pieces([[0], [1], [0, 1]], 3, 2)
    teacher_logits = torch.log(torch.tensor([[0.5, 0.5]]))
    span = torch.log(torch.tensor([0.2]))
    same = output_loss(torch.log(torch.tensor([[0.3, 0.5, 0.2]])), torch.tensor([2]), span, teacher_logits, first)
    assert abs(float(same)) < 1e-6
    shifted = output_loss(torch.log(torch.tensor([[0.3, 0.3, 0.4]])), torch.tensor([2]), span, teacher_logits,
                          first)
    # token term (log 0.4 - log 0.2)^2 plus KL(0.5, 0.5 || 0.7, 0.3)
    expected = math.log(2) ** 2 + 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)
    assert float(shifted) == pytest.approx(expected, rel=1e-5)


def test_cap_rows_bounds_every_new_logit_on_base_language_states():
    """Random states and rows: after the cap no row scores above max(cap, its start row's score) at any
    state (checked by computing the logits directly); rows already under it are returned unchanged."""
    from vocab_extend.model.init.distill.outputs import cap_rows

    generator = torch.Generator().manual_seed(0)
    states, start = torch.randn(50, 8, generator=generator), 0.1 * torch.randn(30, 8, generator=generator)
    rows = start + torch.randn(30, 8, generator=generator) * torch.linspace(0, 3, 30)[:, None]
    lse = torch.full((50,), 5.0)
    capped, moved = cap_rows(rows, start, states, lse, cap=-2.0)
    bound = (states @ start.T - lse[:, None]).clamp(min=-2.0)
    assert ((states @ capped.T - lse[:, None]) <= bound + 1e-4).all()
    fine = ((states @ rows.T - lse[:, None]) <= bound).all(0)
    assert torch.equal(capped[fine], rows[fine]) and moved == int((~fine).sum()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("tied", [False, True])
def test_distill_beats_mean_at_step_zero_on_held_out_text(merged, trained, tied):
    _, tokenizer, base, _ = merged
    held_out = _split()[1]
    model = trained[tied]
    base_bpb = bits_per_byte(model, base, held_out, progress=False, block_size=128).bpb
    mean_bpb = bits_per_byte(_mean(model, merged), tokenizer, held_out, progress=False, block_size=128).bpb
    distilled, _ = _distilled(model, merged, max_contexts=256, steps=48)
    distill_bpb = bits_per_byte(distilled, tokenizer, held_out, progress=False, block_size=128).bpb
    assert distill_bpb < mean_bpb - 0.02 * (mean_bpb - base_bpb), (base_bpb, mean_bpb, distill_bpb)


def test_distill_without_texts_or_corpus_is_one_error(merged, tmp_path, capsys):
    folder, tokenizer, base, base_size = merged
    with pytest.raises(VocabExtendError, match="--corpus"):
        init_embeddings(_pico(base_size, False), tokenizer, base, base_size, InitConfig(method="distill"))
    model_dir = tmp_path / "pico"
    _pico(base_size, False).save_pretrained(model_dir)
    meta = json.loads((folder / "vocab_extend.json").read_text(encoding="utf-8"))
    assert meta["corpus"] == [str(SAMPLE_JA)]  # the merge names its corpus: distill's default
    copy_dir = tmp_path / "tok"
    shutil.copytree(folder, copy_dir)
    args = ["init-model", "--model", str(model_dir), "--tokenizer", str(copy_dir), "--method", "distill"]
    for corpus, says in ((["no/such/corpus"], "reads the merge's training corpus no/such/corpus"),
                         ([], "needs --corpus SPEC")):  # moved away since; an older merge that names none
        (copy_dir / "vocab_extend.json").write_text(json.dumps({**meta, "corpus": corpus}), encoding="utf-8")
        assert main([*args, "--output-dir", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"error: --method distill {says}") and not (tmp_path / "out").exists()
    assert main([*args, "--corpus", str(SAMPLE_JA), "--distill-steps", "-1", "--output-dir", str(tmp_path / "o")]) == 2
    assert "error: --distill-steps must be 0 or more" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_distill_writes_its_report(merged, tmp_path):
    folder, tokenizer, _, base_size = merged
    model_dir = tmp_path / "pico"
    _pico(base_size, False).save_pretrained(model_dir)
    out = tmp_path / "out"
    assert main(["init-model", "--model", str(model_dir), "--tokenizer", str(folder), "--method", "distill",
                 "--corpus", str(SAMPLE_JA / "news.txt"), "--distill-contexts", "1", "--distill-steps", "2",
                 "--output-dir", str(out)]) == 0
    report = json.loads((out / "init_embeddings.json").read_text(encoding="utf-8"))
    assert report["method"] == "distill" and report["distill"]["contexts"] > 0
    # 2 steps of 16 windows use some of the windows; every window's tokens get a fitted output row
    assert 0 < report["distill"]["input_rows_distilled"] <= report["distill"]["output_rows_fitted"]
