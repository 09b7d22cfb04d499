"""``check-gguf``: llama.cpp reading an export agrees with the HF folder it came from, and a GGUF with two
vocabulary entries swapped is caught.

The model is the extended pico LLaMA of ``test_export_gguf.py`` (Mistral's SentencePiece tokenizer + Japanese,
untied). The swapped file is the f32 export rewritten by the ``gguf`` package's reader and writer with the
token strings of the two ids the check's text uses most exchanged; its weights are untouched, so only the
tokenizer can tell the files apart.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from test_export_gguf import _extended_model
from vocab_extend.cli import main

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None,
                                     reason="xllamacpp (the gguf-check extra) is not installed")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The pico model folder, its tokenizer folder and its f32 and q8_0 exports."""
    root = tmp_path_factory.mktemp("check-gguf")
    model = _extended_model(root, "mistral-7b-v0.1", 32000, tied=False, pad=None)
    files = {"model": model, "tokenizer": root / "tokenizer"}
    for outtype in ("f32", "q8_0"):
        files[outtype] = root / f"pico-{outtype}.gguf"
        assert main(["export-gguf", "--model", str(model), "--output", str(files[outtype]), "--outtype", outtype]) == 0
    return files


def swap_tokens(source: Path, target: Path, first: int, second: int) -> None:
    """A copy of ``source`` whose vocabulary has the strings of ids ``first`` and ``second`` exchanged."""
    import gguf

    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(target, reader.fields["general.architecture"].contents())
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue  # the writer writes these itself
        value = field.contents()
        if field.name == "tokenizer.ggml.tokens":
            value[first], value[second] = value[second], value[first]
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()


def _verdict(capsys) -> str:
    out = capsys.readouterr().out.strip()
    assert "\n" not in out, out
    return out


@pytest.mark.slow
@needs_llama_cpp
@pytest.mark.parametrize("outtype", ["f32", "q8_0"])
def test_an_export_passes(exported, capsys, outtype):
    """Same ids on every default line; log-probabilities within the weight type's tolerance."""
    assert main(["check-gguf", str(exported[outtype]), "--tokenizer", str(exported["model"])]) == 0
    verdict = _verdict(capsys)
    assert verdict.startswith("check-gguf: OK — ") and "identical ids" in verdict, verdict
    assert "max |Δ logprob| = " in verdict and ("max <= 0.001 for f32" if outtype == "f32" else "mean <=") in verdict


@pytest.mark.slow
@needs_llama_cpp
def test_ids_only_without_a_model_and_own_text(exported, tmp_path, capsys):
    text = tmp_path / "lines.txt"
    text.write_text("東京は日本の首都です。\n\nThe capital of France is Paris.\n", encoding="utf-8")
    assert main(["check-gguf", str(exported["f32"]), "--tokenizer", str(exported["tokenizer"]), "--text", str(text)]) == 0
    assert _verdict(capsys).startswith("check-gguf: OK — 2 lines, identical ids")


@pytest.mark.slow
@needs_llama_cpp
def test_a_tolerance_below_the_rounding_fails(exported, capsys):
    """q8_0 rounding is far above 1e-6 nats: the verdict says FAILED, exit 1."""
    assert main(["check-gguf", str(exported["q8_0"]), "--tokenizer", str(exported["model"]),
                 "--tolerance", "1e-6"]) == 1
    verdict = _verdict(capsys)
    assert verdict.startswith("check-gguf: FAILED — ") and "mean <= 1e-06" in verdict, verdict


@pytest.mark.slow
@needs_llama_cpp
def test_two_swapped_vocabulary_entries_fail(exported, tmp_path, capsys):
    from vocab_extend.model.export.check import default_lines
    from vocab_extend.tokenizer.folder import TokenizerFolder
    from vocab_extend.tokenizer.loader import load_tokenizer

    tokenizer = load_tokenizer(str(exported["model"]))
    special = set(tokenizer.all_special_ids)
    counts = Counter(i for line in default_lines(TokenizerFolder.find(exported["model"]))
                     for i in tokenizer(line)["input_ids"] if i not in special)
    (first, _), (second, _) = counts.most_common(2)
    swapped = tmp_path / "swapped.gguf"
    swap_tokens(exported["f32"], swapped, first, second)
    assert main(["check-gguf", str(swapped), "--tokenizer", str(exported["model"])]) == 1
    verdict = _verdict(capsys)
    assert verdict.startswith("check-gguf: FAILED — ") and "lines tokenize differently; first: line " in verdict
    assert "llama.cpp" in verdict and "transformers" in verdict, verdict
    # the unchanged file still passes: the failure is the swap's
    assert main(["check-gguf", str(exported["f32"]), "--tokenizer", str(exported["model"]), "--text",
                 str(Path(__file__).parents[1] / "corpora" / "en" / "sample.txt")]) == 0


@needs_llama_cpp
@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("not_gguf", "is not a readable GGUF file"),
    ("folder", "is a folder"),
    ("no_tokenizer", "--tokenizer"),
])
def test_bad_input_is_one_sentence(tmp_path, capsys, case, expected):
    gguf_file = {"missing": tmp_path / "nope.gguf", "folder": tmp_path}.get(case, tmp_path / "bad.gguf")
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file")
    tokenizer = tmp_path / ("nope" if case == "no_tokenizer" else "")
    assert main(["check-gguf", str(gguf_file), "--tokenizer", str(tokenizer)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err, err


def test_missing_llama_cpp_is_one_sentence(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "xllamacpp" else real(name, *a))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert main(["check-gguf", str(tmp_path / "m.gguf"), "--tokenizer", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: check-gguf needs llama.cpp") and "gguf-check" in err and "\n" not in err, err


def test_tolerance_is_a_positive_number(capsys):
    assert main(["check-gguf", "x.gguf", "--tokenizer", ".", "--tolerance", "-1"]) == 2
    assert "--tolerance must be positive" in capsys.readouterr().err
