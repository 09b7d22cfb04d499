"""Weighted training mixtures: shares, determinism across process counts, epochs per corpus, bad weights."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from conftest import SAMPLE_EN, SAMPLE_JA
from test_pretrain import build_tokenizer, cache_dir, pico_config  # noqa: F401  (cache_dir is a fixture)
from vocab_extend.errors import VocabExtendError
from vocab_extend.pretrain import pretrain
from vocab_extend.pretrain.config import config_from_dict
from vocab_extend.pretrain.data import build_mixture, eval_documents, exclusion_set
from vocab_extend.pretrain.mixture import Mixture
from vocab_extend.pretrain.outputs import read_metrics

TRAIN = [f"ja={SAMPLE_JA}", f"en={SAMPLE_EN}"]


@pytest.mark.parametrize("weights", [{"ja": 0.9, "en": 0.1}, {"a": 7, "b": 2, "c": 1}, {"a": 0.55, "b": 0.45}])
def test_realised_shares_are_within_two_points_after_500_blocks(weights):
    mixture = Mixture(list(weights), list(weights.values()), seed=3)
    drawn = Counter(mixture.names[mixture.corpus_at(k)] for k in range(500))  # counted position by position
    total = sum(weights.values())
    for name, w in weights.items():
        assert abs(drawn[name] / 500 - w / total) <= 0.02
    assert mixture.counts(500) == dict(drawn)
    # another seed gives another order, not other shares
    other = Mixture(list(weights), list(weights.values()), seed=4)
    assert [other.corpus_at(k) for k in range(100)] != [mixture.corpus_at(k) for k in range(100)]


def test_each_corpus_reads_its_blocks_in_order_and_starts_its_own_next_epoch(cache_dir, tmp_path):
    config = pico_config(cache_dir, tmp_path / "run", train=TRAIN, train_weights={"ja": 0.5, "en": 0.5}, eval={})
    tokenizer = build_tokenizer(config)
    blocks = build_mixture(config.data, config.seed, tokenizer, exclusion_set(eval_documents(config.data, config.eval)))
    ja, en = blocks.corpora
    assert en.num_blocks < ja.num_blocks
    n = 2 * en.num_blocks + 40  # en runs out (twice) long before ja does
    located = [blocks.mixture.locate(k) for k in range(n)]
    for c in (0, 1):
        own = [i for corpus, i in located if corpus == c]
        assert own == list(range(len(own)))  # every block of a corpus once per epoch, no gaps, no repeats
    en_epochs = [i for corpus, i in located if corpus == 1]
    assert len(en_epochs) > en.num_blocks  # en is in its second epoch while ja is still in its first
    # its blocks of the second epoch are all of en's blocks again, in another order
    got = [tuple(en.get(i, 1)[0][:8]) for i in range(en.num_blocks, 2 * en.num_blocks)]
    first = [tuple(en.get(i, 1)[0][:8]) for i in range(en.num_blocks)]
    assert sorted(got) == sorted(first) and got != first


def test_the_same_blocks_on_one_and_two_processes(cache_dir, tmp_path):
    config = pico_config(cache_dir, tmp_path / "run", train=TRAIN, train_weights={"ja": 0.8, "en": 0.2}, eval={})
    blocks = build_mixture(config.data, config.seed, build_tokenizer(config), exclusion_set(eval_documents(config.data, config.eval)))
    batch = 8
    for step in range(0, 30, 7):
        one = blocks.get(step * batch, batch)
        two = np.concatenate([blocks.get(step * batch + r * batch // 2, batch // 2) for r in range(2)])
        assert np.array_equal(one, two)


def test_a_mixture_run_logs_corpus_blocks_and_reports_shares(cache_dir, tmp_path):
    out = tmp_path / "run"
    pretrain(pico_config(cache_dir, out, train=TRAIN, train_weights={"ja": 0.75, "en": 0.25}, eval={},
                         stages="full:25", batch_size=4))
    train = [r for r in read_metrics(out) if r["kind"] == "train"]
    assert [r["corpus_blocks"]["ja"] + r["corpus_blocks"]["en"] for r in train] == [4 * (i + 1) for i in range(25)]
    assert train[-1]["corpus_blocks"] == {"ja": 75, "en": 25}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Training mixture" in report and "| ja | 75.0% | 75 | 75.0% |" in report


@pytest.mark.parametrize("weights, message", [
    ({"ja": -0.1, "en": 1}, "the weight of ja must be zero or more, not -0.1"),
    ({"ja": 0.9, "fr": 0.1}, "train_weights names 'fr', which is no training corpus"),
    ({"ja": 1}, "gives no weight to the training corpus 'en'"),
    ({"ja": 0, "en": 0}, "are all zero"),
    ({"ja": "lots", "en": 1}, "the weight of ja must be a number"),
])
def test_bad_weights_are_one_sentence(weights, message):
    with pytest.raises(VocabExtendError, match=message) as info:
        config_from_dict({"train": TRAIN, "train_weights": weights})
    assert "\n" not in str(info.value)
