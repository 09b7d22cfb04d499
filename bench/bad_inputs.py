#!/usr/bin/env python3
"""Bad inputs against every subcommand: how many end in one ``error:`` sentence at exit 2, how many in a traceback.

Runs a catalogue of wrong command lines and files (missing, empty, binary, UTF-16, corrupt ``.gz``, lone
surrogates in JSON, numbers out of range or of the wrong type, outputs that are inputs or files, wrong
config types, JSON nested 100,000 levels deep, GGUF files whose config does not validate...) through
``vocab_extend.cli.main`` in this process, on a pico model and a small merge built first. A case passes when it
returns 2, stderr's last line starts with ``error:`` and the message is one line, and no output folder or
file was left. Anything escaping ``main`` is counted as a traceback (target 0).

The "full disk" cases write onto a 1 MiB tmpfs (filled to the last byte for ``measure`` and
``evaluate-bpb``, empty for ``export-gguf``, whose file is larger), where nothing may be left afterwards: no
temporary file, no lock file. Where a tmpfs cannot be mounted (mounting needs root), the disk is simulated:
writing the lock holder and the GGUF tensors fail with ENOSPC / numpy's short write.

    python bench/bad_inputs.py                  # every subcommand
    python bench/bad_inputs.py --only pretrain

Writes ``bench/results/bad_inputs.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, ContextManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bad_inputs_setup import FullDisk, held_by_another_process, robust_files  # noqa: E402  (beside this script)
from vocab_extend.atomic import atomic_write_json  # noqa: E402
from vocab_extend.cli import main as cli_main  # noqa: E402

RESULT = ROOT / "bench" / "results" / "bad_inputs.json"
JA = ROOT / "corpora" / "ja"
EN = ROOT / "corpora" / "en"
PICO = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
        "num_key_value_heads": 2}


def files(tmp: Path) -> dict[str, Path]:
    """The bad files the cases read."""
    made = {
        "empty": tmp / "empty.txt", "binary": tmp / "binary.txt", "utf16_nobom": tmp / "utf16.txt",
        "gz": tmp / "corrupt.txt.gz", "surrogate": tmp / "surrogate.jsonl", "nofield": tmp / "nofield.jsonl",
        "afile": tmp / "afile", "garbage_model": tmp / "garbage.model", "garbage_json": tmp / "tokenizer.json",
        "garbage_gguf": tmp / "garbage.gguf", "yaml_bin": tmp / "binary.yaml",
    }
    made["empty"].write_text("\n\n", encoding="utf-8")
    made["binary"].write_bytes(bytes(range(256)) * 64)
    made["utf16_nobom"].write_bytes((JA / "news.txt").read_text(encoding="utf-8")[:4000].encode("utf-16-le"))
    made["gz"].write_bytes(gzip.compress("日本語の文です。\n".encode() * 100)[:60])
    made["surrogate"].write_text('{"text": "\\ud800 lone"}\n' * 5, encoding="utf-8")
    made["nofield"].write_text('{"body": "日本語"}\n' * 5, encoding="utf-8")
    made["afile"].write_text("x", encoding="utf-8")
    made["garbage_model"].write_bytes(os.urandom(2000))
    made["garbage_json"].write_text('{"not": "a tokenizer"}', encoding="utf-8")
    made["garbage_gguf"].write_bytes(b"GGUF" + os.urandom(2000))
    made["yaml_bin"].write_bytes(os.urandom(3000))
    (tmp / "emptydir").mkdir()
    return made


def fixtures(tmp: Path) -> dict[str, Path]:
    """A merged tokenizer (Mistral v1 + a 3,000-piece Japanese model), a pico base model and its extended copy."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok, base, ext = tmp / "tok", tmp / "pico-base", tmp / "pico-ext"
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
        assert cli_main(["merge", "--corpus", str(JA), "--vocab-size", "3000", "--output-dir", str(tok)]) == 0
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(vocab_size=32000, **PICO)).save_pretrained(base)
        assert cli_main(["init-model", "--model", str(base), "--tokenizer", str(tok), "--output-dir", str(ext)]) == 0
    return {"tok": tok, "base": base, "ext": ext}


# (name, argv), or (name, argv, setup) where setup() is the context (a full disk) the case runs in
Case = tuple[str, list[str]] | tuple[str, list[str], Callable[[], ContextManager[None]]]


def robust_cases(tmp: Path, f: dict[str, Path], fx: dict[str, Path], disk: FullDisk) -> dict[str, list[Case]]:
    """Deep JSON corpora, GGUF files whose config does not validate, and writing onto a full disk."""
    out, tok, base, ext = str(tmp / "out"), str(fx["tok"]), str(fx["base"]), str(fx["ext"])
    deep = {"JSON nested 100k deep": f["deep_json"], "JSON text field nested 100k deep": f["deep_field"],
            "JSONL record nested 100k deep": f["deep_jsonl"]}
    gguf = {"GGUF config does not validate": f["gguf_5_heads"], "GGUF negative head count": f["gguf_negative_heads"],
            "GGUF head count 0": f["gguf_0_heads"], "GGUF cut short": f["gguf_cut"]}
    full = disk.folder
    return {
        "merge": [(name, ["merge", "--corpus", str(path), "--output-dir", out]) for name, path in deep.items()]
        + [(f"{name} as --base", ["merge", "--base", str(path), "--corpus", str(JA), "--output-dir", out])
           for name, path in gguf.items()],
        "measure": [(name, ["measure", "--tokenizer", tok, "--corpus", str(path)]) for name, path in deep.items()]
        + [("--json onto a full disk", ["measure", "--tokenizer", tok, "--corpus", str(JA), "--max-docs", "5",
                                        "--json", str(full / "measure.json")], disk.filled)],
        "init-model": [(f"{name} as --model", ["init-model", "--model", str(path), "--tokenizer", tok,
                                               "--output-dir", out]) for name, path in gguf.items()],
        "evaluate-bpb": [(name, ["evaluate-bpb", "--model", ext, "--corpus", f"ja={path}"])
                         for name, path in deep.items()]
        + [("--json onto a full disk", ["evaluate-bpb", "--model", ext, "--corpus", f"ja={JA}", "--max-bytes",
                                        "2000", "--json", str(full / "bpb.json")], disk.filled)],
        "export-gguf": [("onto a full disk", ["export-gguf", "--model", ext, "--output", str(full / "model.gguf")],
                         disk.empty)],
    }


def cases(tmp: Path, f: dict[str, Path], fx: dict[str, Path], disk: FullDisk) -> dict[str, list[Case]]:
    found = catalogue(tmp, f, fx)
    for command, extra in robust_cases(tmp, f, fx, disk).items():
        found[command] += extra
    return found


def catalogue(tmp: Path, f: dict[str, Path], fx: dict[str, Path]) -> dict[str, list[Case]]:
    out = str(tmp / "out")
    tok, base, ext = str(fx["tok"]), str(fx["base"]), str(fx["ext"])
    merge = ["merge", "--output-dir", out]
    m = lambda *a: merge + ["--corpus", str(JA), *a]  # noqa: E731
    measure = lambda *a: ["measure", "--tokenizer", tok, "--corpus", str(JA), *a]  # noqa: E731
    init = lambda *a: ["init-model", "--model", base, "--tokenizer", tok, "--output-dir", out, *a]  # noqa: E731
    ev = lambda *a: ["evaluate-bpb", "--model", ext, "--corpus", f"ja={JA}", "--max-bytes", "2000", *a]  # noqa: E731
    gg = lambda *a: ["export-gguf", "--model", ext, "--output", str(tmp / "out.gguf"), *a]  # noqa: E731
    return {
        "merge": [
            ("missing corpus", merge + ["--corpus", str(tmp / "nope")]),
            ("empty corpus", merge + ["--corpus", str(f["empty"])]),
            ("binary corpus", merge + ["--corpus", str(f["binary"])]),
            ("UTF-16 corpus without BOM", merge + ["--corpus", str(f["utf16_nobom"])]),
            ("corrupt .gz", merge + ["--corpus", str(f["gz"])]),
            ("lone surrogate in JSONL", merge + ["--corpus", str(f["surrogate"])]),
            ("JSONL without the text field", merge + ["--corpus", str(f["nofield"])]),
            ("empty folder", merge + ["--corpus", str(tmp / "emptydir")]),
            ("vocab size 0", m("--vocab-size", "0")),
            ("vocab size negative", m("--vocab-size", "-5")),
            ("vocab size text", m("--vocab-size", "big")),
            ("vocab size past int64", m("--vocab-size", str(10**30))),
            ("vocab size 1e9", m("--vocab-size", "1000000000")),
            ("seed -1", m("--seed", "-1")),
            ("input sentence size -1", m("--input-sentence-size", "-1")),
            ("verify sample 0", m("--verify-sample", "0")),
            ("held-out fraction 1.5", m("--heldout-fraction", "1.5")),
            ("max docs 0", m("--max-docs", "0")),
            ("missing base", m("--base", str(tmp / "nope.model"))),
            ("garbage base .model", m("--base", str(f["garbage_model"]))),
            ("base folder without tokenizer", m("--base", str(tmp / "emptydir"))),
            ("unknown language", m("--lang", "xx")),
            ("garbage --new-model", m("--new-model", str(f["garbage_model"]))),
            ("--new-model with --vocab-size", m("--new-model", str(f["garbage_model"]), "--vocab-size", "2000")),
            ("output is a file", ["merge", "--corpus", str(JA), "--output-dir", str(f["afile"])]),
            ("output is the corpus folder", ["merge", "--corpus", str(JA), "--output-dir", str(JA), "--overwrite"]),
            ("output in /proc", ["merge", "--corpus", str(JA), "--output-dir", "/proc/vocab-extend-out"]),
            ("unknown option", m("--vocab-sise", "100")),
        ],
        "measure": [
            ("missing tokenizer", ["measure", "--tokenizer", str(tmp / "nope"), "--corpus", str(JA)]),
            ("garbage tokenizer.json", ["measure", "--tokenizer", str(f["garbage_json"]), "--corpus", str(JA)]),
            ("folder without tokenizer", ["measure", "--tokenizer", str(tmp / "emptydir"), "--corpus", str(JA)]),
            ("missing corpus", ["measure", "--tokenizer", tok, "--corpus", str(tmp / "nope")]),
            ("empty corpus", ["measure", "--tokenizer", tok, "--corpus", str(f["empty"])]),
            ("binary corpus", ["measure", "--tokenizer", tok, "--corpus", str(f["binary"])]),
            ("lone surrogate", ["measure", "--tokenizer", tok, "--corpus", str(f["surrogate"])]),
            ("corrupt .gz", ["measure", "--tokenizer", tok, "--corpus", str(f["gz"])]),
            ("--json is a folder", measure("--json", str(tmp / "emptydir"))),
            ("--json is the corpus", measure("--json", str(JA / "news.txt"))),
            ("--json in /proc", measure("--json", "/proc/vocab-extend.json")),
            ("max docs -1", measure("--max-docs", "-1")),
            ("unknown option", measure("--jsn", "x")),
        ],
        "init-model": [
            ("missing model", ["init-model", "--model", str(tmp / "nope"), "--tokenizer", tok, "--output-dir", out]),
            ("missing tokenizer", ["init-model", "--model", base, "--tokenizer", str(tmp / "nope"), "--output-dir", out]),
            ("tokenizer not extended", ["init-model", "--model", base, "--tokenizer", str(tmp / "emptydir"),
                                        "--output-dir", out]),
            ("garbage .gguf model", ["init-model", "--model", str(f["garbage_gguf"]), "--tokenizer", tok,
                                     "--output-dir", out]),
            ("model of another base", ["init-model", "--model", "smollm2-135m", "--tokenizer", tok, "--output-dir", out]),
            ("unknown method", init("--method", "magic")),
            ("distill contexts 0", init("--method", "distill", "--corpus", str(JA), "--distill-contexts", "0")),
            ("distill steps -1", init("--method", "distill", "--corpus", str(JA), "--distill-steps", "-1")),
            ("distill corpus missing", init("--method", "distill", "--corpus", str(tmp / "nope"))),
            ("pad to multiple -1", init("--pad-to-multiple-of", "-1")),
            ("seed -1", init("--seed", "-1")),
            ("unknown dtype", init("--dtype", "int3")),
            ("output is the tokenizer folder", ["init-model", "--model", base, "--tokenizer", tok, "--output-dir",
                                                tok, "--overwrite"]),
            ("output is the model folder", ["init-model", "--model", base, "--tokenizer", tok, "--output-dir", base,
                                            "--overwrite"]),
            ("output is a file", ["init-model", "--model", base, "--tokenizer", tok, "--output-dir", str(f["afile"])]),
        ],
        "evaluate-bpb": [
            ("missing model", ["evaluate-bpb", "--model", str(tmp / "nope"), "--corpus", f"ja={JA}"]),
            ("corpus without a name", ["evaluate-bpb", "--model", ext, "--corpus", "=x"]),
            ("missing corpus", ["evaluate-bpb", "--model", ext, "--corpus", f"ja={tmp / 'nope'}"]),
            ("empty corpus", ["evaluate-bpb", "--model", ext, "--corpus", f"ja={f['empty']}"]),
            ("lone surrogate", ["evaluate-bpb", "--model", ext, "--corpus", f"ja={f['surrogate']}"]),
            ("max bytes 0", ev("--max-bytes", "0")),
            ("block size 1", ev("--block-size", "1")),
            ("block size 0", ev("--block-size", "0")),
            ("stride 0", ev("--stride", "0")),
            ("batch size 0", ev("--batch-size", "0")),
            ("device tpu9", ev("--device", "tpu9")),
            ("device cuda without GPU", ev("--device", "cuda")),
            ("--json is a folder", ev("--json", str(tmp / "emptydir"))),
            ("tokenizer of another model", ev("--tokenizer", "smollm2-135m")),
            ("garbage .gguf model", ["evaluate-bpb", "--model", str(f["garbage_gguf"]), "--corpus", f"ja={JA}"]),
        ],
        "export-gguf": [
            ("missing model", ["export-gguf", "--model", str(tmp / "nope"), "--output", str(tmp / "o.gguf")]),
            ("folder without config", ["export-gguf", "--model", str(tmp / "emptydir"), "--output", str(tmp / "o.gguf")]),
            ("unknown outtype", gg("--outtype", "q2_k")),
            ("output is a folder", ["export-gguf", "--model", ext, "--output", str(tmp / "emptydir")]),
            ("output exists", ["export-gguf", "--model", ext, "--output", str(f["afile"])]),
            ("output is an input", ["export-gguf", "--model", ext, "--output", str(fx["ext"] / "config.json"),
                                    "--overwrite"]),
            ("unknown --pre", gg("--pre", "no-such-pre")),
            ("output in /proc", ["export-gguf", "--model", ext, "--output", "/proc/x.gguf"]),
        ],
        "pretrain": pretrain_cases(tmp, f),
    }


PRETRAIN_BASE = {
    "model": "pico", "pico": PICO, "tokenizer_merge": {"corpus": str(JA), "vocab_size": 3000, "lang": "ja"},
    "train": [f"ja={JA}"], "heldout_fraction": 0.1, "eval": {"en": str(EN)}, "block_size": 32, "batch_size": 4,
    "stages": [{"name": "full", "steps": 2}], "warmup_steps": 1, "eval_every": 0, "eval_at_start": False,
    "eval_max_bytes": 1000, "save_every": 0, "progress": False, "tensorboard": False,
}


def pretrain_cases(tmp: Path, f: dict[str, Path]) -> list[Case]:
    import yaml

    bad = {
        "pico is text": {"pico": "small"}, "merge vocab size text": {"tokenizer_merge": {"corpus": str(JA), "vocab_size": "big"}},
        "merge corpus a number": {"tokenizer_merge": {"corpus": 5}}, "lora_r 0": {"stages": [{"name": "lora", "steps": 2, "lora_r": 0}]},
        "lora dropout 2": {"stages": [{"name": "lora", "steps": 2, "lora_dropout": 2.0}]},
        "lora targets unknown": {"stages": [{"name": "lora", "steps": 2, "lora_targets": ["nope"]}]},
        "cache_dir a file": {"cache_dir": str(f["afile"])}, "held out everything": {"heldout_fraction": 0.9999},
        "text_field a number": {"text_field": 5}, "model a number": {"model": 5},
        "model missing": {"model": str(tmp / "nope")}, "tokenizer and tokenizer_merge": {"tokenizer": str(tmp)},
        "train a number": {"train": 5}, "train missing": {"train": [str(tmp / "nope")]},
        "eval missing": {"eval": {"en": str(tmp / "nope")}}, "eval a list of numbers": {"eval": [5]},
        "pico unknown key": {"pico": {**PICO, "nonsense": 3}}, "pico heads do not divide": {"pico": {"hidden_size": 30}},
        "pico hidden 0": {"pico": {"hidden_size": 0}}, "micro batch does not divide": {"micro_batch_size": 3},
        "device tpu9": {"device": "tpu9"}, "device cuda without GPU": {"device": "cuda"},
        "adam betas text": {"adam_betas": "x"}, "stages a mapping": {"stages": {"name": "full"}},
        "stage without steps": {"stages": "full"}, "stage steps text": {"stages": "full:abc"},
        "stage lr text": {"stages": [{"name": "full", "steps": 2, "lr": "fast"}]}, "max_docs 0": {"max_docs": 0},
        "num_proc 0": {"num_proc": 0}, "streaming text": {"streaming": "maybe"},
        "train_weights a list": {"train_weights": [1, 2]}, "train_weights unknown name": {"train_weights": {"zz": 1.0}},
        "base_vocab_size too big": {"base_vocab_size": 10**9}, "base_vocab_size negative": {"base_vocab_size": -1},
        "seed -1": {"seed": -1}, "seed past 64 bits": {"seed": 2**70}, "output_dir a file": {"output_dir": str(f["afile"])},
        "output_dir in /proc": {"output_dir": "/proc/vocab-out"}, "push_to_hub a number": {"push_to_hub": 5},
        "eval_block_size huge": {"eval_block_size": 10**9}, "block_size huge": {"block_size": 10**6},
        "lr text": {"lr": "fast"}, "lr infinite": {"lr": float("inf")}, "lr 1e30": {"lr": 1e30},
        "keep_checkpoints 0": {"keep_checkpoints": 0}, "log_every 0": {"log_every": 0},
        "fsdp on one process": {"parallelism": "fsdp"}, "max_steps text": {"max_steps": "ten"},
        "precision fp8": {"precision": "fp8"}, "unknown key": {"lerning_rate": 1},
        "pico hidden -8": {"pico": {**PICO, "hidden_size": -8}}, "pico layers -1": {"pico": {**PICO, "num_hidden_layers": -1}},
        "pico layers 0": {"pico": {**PICO, "num_hidden_layers": 0}},
        "pico context -1": {"pico": {**PICO, "max_position_embeddings": -1}},
        "pico kv heads 0": {"pico": {**PICO, "num_key_value_heads": 0}},
        "pico kv heads do not divide": {"pico": {**PICO, "num_key_value_heads": 3}},
        "pico rms_norm_eps -1": {"pico": {**PICO, "rms_norm_eps": -1}},
        "pico hidden 8.5": {"pico": {**PICO, "hidden_size": 8.5}},
    }
    found = []
    for i, (name, override) in enumerate(bad.items()):
        data = {**PRETRAIN_BASE, "cache_dir": str(tmp / "cache"), "output_dir": str(tmp / "out"), **override}
        path = tmp / f"pretrain-{i}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        found.append((name, ["pretrain", "--config", str(path)]))
    good = tmp / "pretrain-good.yaml"
    good.write_text(yaml.safe_dump({**PRETRAIN_BASE, "cache_dir": str(tmp / "cache"), "output_dir": str(tmp / "out")},
                                   allow_unicode=True), encoding="utf-8")
    found += [
        ("binary config", ["pretrain", "--config", str(f["yaml_bin"])]),
        ("config is a folder", ["pretrain", "--config", str(tmp / "emptydir")]),
        ("config missing", ["pretrain", "--config", str(tmp / "nope.yaml")]),
        ("resume without checkpoint", ["pretrain", "--config", str(tmp / "pretrain-0.yaml"), "--resume"]),
        ("unknown option", ["pretrain", "--config", str(tmp / "pretrain-0.yaml"), "--eval-evry", "3"]),
        ("output locked by another run", ["pretrain", "--config", str(good)], lambda: held_by_another_process(tmp / "out")),
    ]
    return found


def run_case(argv: list[str], outputs: list[Path], setup: Callable[[], ContextManager[None]] | None = None,
             watched: Path | None = None) -> dict[str, object]:
    """Run one case (inside ``setup()``, when given); whatever appeared in ``watched`` counts as left output."""
    err = io.StringIO()
    started = time.perf_counter()
    before = set(watched.iterdir()) if watched is not None else set()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            with setup() if setup is not None else contextlib.nullcontext():
                code = cli_main(argv)
        escaped = None
    except BaseException as exc:  # noqa: BLE001 - counting what escapes is the point
        code, escaped = None, f"{type(exc).__name__}: {str(exc)[:200]}"
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    appeared = sorted(set(watched.iterdir()) - before) if watched is not None else []
    left = [str(p) for p in [*outputs, *appeared] if p.exists()]
    for p in [*outputs, *appeared]:  # the next case starts clean
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()
    ok = escaped is None and code == 2 and last.startswith("error: ") and not left
    return {"exit_code": code, "traceback": escaped, "message": last[:300], "left_output": left,
            "one_sentence": ok, "seconds": round(time.perf_counter() - started, 2)}


def scrubbed(record: object, tmp: Path) -> object:
    """``record`` with the temporary folder written ``$TMP`` and the checkout ``.``: no machine path in results."""
    if isinstance(record, dict):
        return {key: scrubbed(value, tmp) for key, value in record.items()}
    if isinstance(record, list):
        return [scrubbed(value, tmp) for value in record]
    if isinstance(record, str):
        return record.replace(str(tmp), "$TMP").replace(str(ROOT), ".")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one subcommand")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vocab-extend-bad-"))
    os.environ.setdefault("VOCAB_EXTEND_CACHE", str(tmp / "model-cache"))
    f = {**files(tmp), **robust_files(tmp)}
    fx = fixtures(tmp)
    disk = FullDisk(tmp)
    outputs = [tmp / "out", tmp / "out.gguf", tmp / "o.gguf"]
    result: dict[str, object] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                                            f"{platform.python_version()}",
                                 "full_disk": "a 1 MiB tmpfs" if disk.mounted else "simulated (no tmpfs mount)",
                                 "commands": {}}
    try:
        run_all(args, cases(tmp, f, fx, disk), outputs, disk, result)
    finally:
        disk.close()
    summary = {c: {k: v for k, v in r.items() if k != "cases"} for c, r in result["commands"].items()}  # type: ignore[union-attr]
    result["summary"] = summary
    print(json.dumps(summary, indent=1))
    atomic_write_json(RESULT, scrubbed(result, tmp))


def run_all(args: argparse.Namespace, found: dict[str, list[Case]], outputs: list[Path], disk: FullDisk,
            result: dict[str, object]) -> None:
    for command, items in found.items():
        if args.only and command != args.only:
            continue
        records = {}
        for name, argv, *setup in items:
            records[name] = run_case(argv, outputs, *setup, watched=disk.folder)
            mark = "ok " if records[name]["one_sentence"] else "BAD"
            print(f"{mark} {command:13s} {name:34s} {records[name]['traceback'] or records[name]['message'][:110]}",
                  flush=True)
        result["commands"][command] = {  # type: ignore[index]
            "tried": len(records), "one_sentence": sum(r["one_sentence"] for r in records.values()),
            "tracebacks": sum(r["traceback"] is not None for r in records.values()), "cases": records}


if __name__ == "__main__":
    main()
