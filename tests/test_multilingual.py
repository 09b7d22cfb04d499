"""Several languages in one merge: each language's model merged in turn, every check passing against the
original base, one report row per language; bad combinations of options are one sentence before any work.

The corpora are synthetic (seeded): Thai-script syllables, and Vietnamese syllables with their own letters.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from vocab_extend.cli import main
from vocab_extend.errors import VocabExtendError
from vocab_extend.scripts import ScriptSet
from vocab_extend.tokenizer.multilang import corpus_language, language_plan, parse_sizes, union_scripts

THAI_CONSONANTS = [chr(c) for c in range(0x0E01, 0x0E2F)]
THAI_VOWELS = ["ะ", "า", "ิ", "ี", "ึ", "ื", "ุ", "ู", "ำ", ""]
THAI_TONES = ["่", "้", "", ""]
VI_SYLLABLES = ("người được việt tiếng những trong của một có không này các cho đã là với về nhiều năm thành "
                "phố học sinh đường nước ngày hôm nay trường đại quốc gia chính phủ kinh tế xã hội văn hóa "
                "lịch sử phát triển công nghệ thông tin điện thoại máy tính bạn tôi chúng ta mình").split()


def _thai_word(rng: random.Random) -> str:
    return "".join(rng.choice(THAI_CONSONANTS) + rng.choice(THAI_VOWELS) + rng.choice(THAI_TONES)
                   for _ in range(rng.randint(1, 3)))


def _corpus(path: Path, words: list[str], rng: random.Random, lines: int, sep: str) -> Path:
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf-like, so BPE finds pieces worth learning
    path.write_text("\n".join(sep.join(rng.choices(words, weights, k=rng.randint(6, 16))) for _ in range(lines))
                    + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("multilingual")
    rng = random.Random(19)
    thai = sorted({_thai_word(rng) for _ in range(400)})
    rng.shuffle(thai)
    vi = [" ".join(rng.sample(VI_SYLLABLES, rng.randint(1, 2))) for _ in range(300)]
    return {"th": _corpus(folder / "th.txt", thai, rng, 700, " "),
            "vi": _corpus(folder / "vi.txt", vi, rng, 700, " ")}


def test_two_languages_on_a_sentencepiece_base(corpora: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["merge", "--corpus", f"th={corpora['th']}", "--corpus", f"vi={corpora['vi']}",
                 "--vocab-size", "th=600,vi=400", "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(check["passed"] for check in report["checks"].values())
    assert report["lang"] == "th+vi"
    assert {"th (held out)", "vi (held out)", "th (training sample)", "vi (training sample)"} <= set(report["corpora"])
    languages = report["languages"]
    assert languages["mode"] == "sequential"
    assert languages["th"]["new_model_size"] == 600 and languages["vi"]["new_model_size"] == 400
    assert languages["th"]["added_pieces"] + languages["vi"]["added_pieces"] == report["added_pieces"] > 0
    assert languages["vi"]["shares_base_script"] and languages["vi"]["added_pieces"] > 0
    assert report["corpora"]["th (held out)"]["chars_per_token_ceiling"] is None  # SentencePiece: no pre-tokens
    for code in ("th", "vi"):
        row = report["corpora"][f"{code} (held out)"]
        assert row["chars_per_token_extended"] > row["chars_per_token_base"]
        assert (out / f"new_language.{code}.model").is_file()
    assert not (out / "new_language.model").exists()
    meta = json.loads((out / "vocab_extend.json").read_text(encoding="utf-8"))
    assert meta["lang"] == "th+vi" and meta["base_vocab_size"] == 32_000
    assert {code: entry["added_pieces"] for code, entry in meta["extra"]["languages"].items()} == {
        "th": languages["th"]["added_pieces"], "vi": languages["vi"]["added_pieces"]}
    assert "| th | " in (out / "report.md").read_text(encoding="utf-8")


def test_two_languages_on_a_bytelevel_base(corpora: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["merge", "--base", "smollm2-135m", "--lang", "th,vi", "--corpus", f"th={corpora['th']}",
                 "--corpus", f"vi={corpora['vi']}", "--vocab-size", "800", "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(check["passed"] for check in report["checks"].values())
    assert report["languages"]["th"]["added_pieces"] > 0 and report["languages"]["vi"]["added_pieces"] > 0
    row = report["corpora"]["th (held out)"]
    assert row["chars_per_token_extended"] <= row["chars_per_token_ceiling"]  # the split's ceiling holds
    assert (out / "new_language_tokenizer.th.json").is_file() and (out / "new_language_tokenizer.vi.json").is_file()
    assert "chars/token with this split" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", ["sequential", "joint"])
def test_two_languages_with_a_widened_split(corpora: dict[str, Path], tmp_path: Path, mode: str) -> None:
    plain, wide = tmp_path / "plain", tmp_path / "wide"
    argv = ["merge", "--base", "smollm2-135m", "--corpus", f"th={corpora['th']}", "--corpus", f"vi={corpora['vi']}",
            "--vocab-size", "800", "--multilingual", mode]
    assert main([*argv, "--output-dir", str(plain)]) == 0
    assert main([*argv, "--widen-split", "--output-dir", str(wide)]) == 0
    reports = {name: json.loads((path / "report.json").read_text(encoding="utf-8")) for name, path in
               (("plain", plain), ("wide", wide))}
    assert all(check["passed"] for check in reports["wide"]["checks"].values())
    assert reports["wide"]["checks"]["base_language_unchanged"]["checked"] > 0
    thai = [report["corpora"]["th (held out)"] for report in reports.values()]
    assert thai[1]["chars_per_token_ceiling"] > 2 * thai[0]["chars_per_token_ceiling"]  # Thai words stay whole
    assert thai[1]["chars_per_token_extended"] > thai[0]["chars_per_token_extended"]
    meta = json.loads((wide / "vocab_extend.json").read_text(encoding="utf-8"))
    assert meta["extra"]["widened_split"] == "th" and meta["extra"]["base_pre_tokenizer"]  # vi: the base's letters
    assert reports["wide"]["languages"]["vi"]["added_pieces"] > 0


@pytest.mark.parametrize("args, words", [
    (["--lang", "th,vi", "--corpus", "th=TH"], "no corpus is marked vi"),
    (["--lang", "th", "--corpus", "th=TH", "--corpus", "vi=VI"], "which --lang th does not name"),
    (["--lang", "th,vi", "--corpus", "TH"], "mark each corpus"),
    (["--corpus", "th=TH", "--corpus", "VI"], "has no language prefix"),
    (["--corpus", "th=TH", "--corpus", "vi=VI", "--vocab-size", "th=800,xx=800"], "not a language code"),
    (["--corpus", "th=TH", "--corpus", "vi=VI", "--vocab-size", "th=800,ja=800"], "does not extend"),
    (["--corpus", "th=TH", "--corpus", "vi=VI", "--vocab-size", "th=50"], "too small"),
    (["--corpus", "TH", "--vocab-size", "th=800"], "needs corpora marked"),
    (["--corpus", "th=TH", "--corpus", "vi=VI", "--vocab-size", "th=8k"], "give a number"),
    (["--lang", "th,xx", "--corpus", "th=TH"], "unknown language 'xx'"),
    (["--lang", "th,th", "--corpus", "th=TH"], "names th twice"),
    (["--corpus", "TH", "--multilingual", "joint"], "merges several languages"),
])
def test_bad_combinations_are_one_sentence(capsys, corpora: dict[str, Path], tmp_path: Path, args: list[str],
                                           words: str) -> None:
    args = [a.replace("TH", str(corpora["th"])).replace("VI", str(corpora["vi"])) for a in args]
    code = main(["merge", *args, "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and words in errors[0], errors
    assert "reading corpus" not in err and not (tmp_path / "o").exists()  # before any work


def test_plans_and_sizes() -> None:
    plan = language_plan("th+vi", ["vi=b", "th=a"], {"th": 100}, None)
    assert [(p.code, p.corpus, p.size) for p in plan or []] == [("th", ["a"], 100), ("vi", ["b"], None)]
    assert corpus_language("notalang=x.txt") == (None, "notalang=x.txt")
    assert parse_sizes("th=1000, vi=2000") == (None, {"th": 1000, "vi": 2000})
    with pytest.raises(VocabExtendError):
        language_plan("auto", ["th=a", "vi=b"], {}, Path("m.model"))
    merged = union_scripts([ScriptSet("a", ((10, 20), (40, 50))), ScriptSet("b", ((21, 30),))])
    assert merged.ranges == ((10, 30), (40, 50)) and merged.name == "a+b"
