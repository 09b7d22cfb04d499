#!/usr/bin/env python3
"""Merge cost against corpus size: ours against each library's own trainer on the same text, both families.

For each ``--sizes`` (default 20MB,100MB,400MB,1GB) a synthetic Japanese corpus is generated
(``bench/scaling_corpus.py``: real clauses of ``--corpora``/ja recombined, seeded, streamed to ``--scratch``),
then each arm runs as its own process, back to back on the same cores, and its wall seconds, CPU seconds
(user + system) and peak RSS are taken from the kernel (``os.wait4``), with the load average around it:

- ``ours-sentencepiece``: ``vocab-extend merge --corpus FILE`` with defaults (the Mistral-7B v0.1 base);
- ``ours-bytelevel``: the same with ``--base smollm2-135m``;
- ``floor-sentencepiece``: ``SentencePieceTrainer.train`` with the options our merge passes it
  (``trainer_options`` of ``vocab_extend/families/sentencepiece/train.py``);
- ``floor-sentencepiece-file``: the same trainer reading the corpus file itself and sampling it its own way
  (``input_sentence_size``: as many shuffled sentences as the merge's sample has documents);
- ``floor-bytelevel``: ``tokenizers``' ``train_from_iterator`` with the BPE trainer settings of
  ``vocab_extend/families/bytelevel/train.py``, inside SmolLM2's normaliser and pre-tokenizer.

``floor-sentencepiece`` and ``floor-bytelevel`` train on exactly the text the merge trains on: the merge's own
``training_documents`` (the corpus without its content-hashed held-out share) through the merge's own sampler
(``vocab_extend.tokenizer.sampling.BudgetSampler``, same budget, same seed; ``--sampler MODULE:FUNCTION``,
called as ``sampler(docs, chars, seed)``, overrides it), read and sampled inside the floor's measured process
(its JSON says how long that took and how long the trainer). ``--sample-chars`` is passed to the merge; without
it the merge runs with its defaults and the floors sample the default budget. Each merge's phase seconds come
from its ``run.json``. The merged tokenizer's chars/token is measured on every held-out kind (documents the
generator never used). ``done_when`` checks issue 20's lines on the largest size.

An arm whose peak RSS, extrapolated linearly from the largest size already measured (or from the figures
in issue 20 before any), would pass ``--max-rss-gb`` is skipped and the JSON says so (unless ``--force``: a
sampling merge is bounded, so pass it when the sample, not the corpus, sets the memory); a run that passes
it anyway is killed at the limit and recorded as such. Figures of earlier runs in ``--json`` are kept (sizes
not rerun stay; those measured with another sampling setting move to ``earlier_settings``).

    python bench/scaling.py --sizes 1MB --json /tmp/smoke.json --plot /tmp/smoke.png     # about a minute
    nice python bench/scaling.py --sizes 20MB,100MB --corpora ../shared/corpora
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from scaling_corpus import Generated, Source, generate, load_source, parse_size  # noqa: E402
from scaling_floor import BASES, FLOORS, floor_setup  # noqa: E402
from scaling_report import done_when, machine, plot, split_earlier  # noqa: E402

from vocab_extend.atomic import atomic_write_json  # noqa: E402
from vocab_extend.jsonfile import read_json_object  # noqa: E402
from vocab_extend.tokenizer.sampling import DEFAULT_SAMPLE_CHARS  # noqa: E402

ARMS = ("ours-sentencepiece", "floor-sentencepiece", "floor-sentencepiece-file", "ours-bytelevel",
        "floor-bytelevel")
# Peak RSS (GB) per MB of corpus at 20 MB in issue 20, used to skip an arm before any size was measured.
PRIOR_GB_PER_MB = {"ours-sentencepiece": 0.035, "floor-sentencepiece": 0.029, "floor-sentencepiece-file": 0.029,
                   "ours-bytelevel": 0.095, "floor-bytelevel": 0.096}
TIME = "/usr/bin/time"
# The merge's sampler, through an adapter called as f(docs, chars, seed) (``--sampler`` overrides it).
DEFAULT_SAMPLER = "scaling_floor:merge_sample"


def _merge_samples() -> bool:
    """Whether this checkout's merge takes ``--sample-chars`` (then the floors must train on its sample)."""
    from vocab_extend.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.suppress(SystemExit):
        main(["merge", "--help"])
    return "--sample-chars" in text.getvalue()


def _rss_bytes(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            own = next((int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:")), 0)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    return own + sum(_rss_bytes(int(child)) for child in children)


def _watch(child: subprocess.Popen, max_rss: int, killed: threading.Event) -> None:
    """Kill ``child`` (GNU time) and what it runs once their RSS passes ``max_rss`` bytes (polled every 0.2 s)."""
    while child.poll() is None:
        if _rss_bytes(child.pid) > max_rss:
            killed.set()
            with contextlib.suppress(OSError):
                for grandchild in Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split():
                    os.kill(int(grandchild), 9)
            return
        time.sleep(0.2)


def run_measured(command: list[str], log_path: Path, max_rss: int) -> dict[str, Any]:
    """Run ``command`` under GNU time: its wall and CPU (user + system) seconds, peak RSS, exit status and
    the load average around it; killed past ``max_rss`` bytes of RSS.

    GNU time, not this process's ``wait4``: a child's ``ru_maxrss`` starts from the RSS of the process that
    forked it, which here holds the source pool."""
    if not Path(TIME).is_file():
        raise SystemExit(f"error: {TIME} (GNU time) is needed to measure peak RSS: install the 'time' package")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    stats = log_path.with_suffix(".time")
    load_before = os.getloadavg()
    started = time.perf_counter()
    killed = threading.Event()
    with open(log_path, "wb") as log:
        child = subprocess.Popen([TIME, "-f", "%M %U %S", "-o", str(stats), *command], stdout=log,
                                 stderr=subprocess.STDOUT, env=env)
        watcher = threading.Thread(target=_watch, args=(child, max_rss, killed), daemon=True)
        watcher.start()
        code = child.wait()
        watcher.join()
    wall = time.perf_counter() - started
    kb, user, system = stats.read_text().strip().splitlines()[-1].split()
    return {"wall_s": round(wall, 2), "cpu_s": round(float(user) + float(system), 2),
            "peak_rss_gb": round(int(kb) * 1024 / 1e9, 3), "exit": code, "killed_at_max_rss": killed.is_set(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def floor_sample_chars(args: argparse.Namespace) -> int:
    """The budget the floors sample: ``--sample-chars``, or the merge's default when it is not given."""
    return DEFAULT_SAMPLE_CHARS if args.sample_chars is None else args.sample_chars


def arm_command(arm: str, corpus: Generated, out: Path, args: argparse.Namespace) -> list[str]:
    """The command line of one arm. ``floor-sentencepiece-file`` asks SentencePiece for as many sentences as
    the merge's sample holds documents, at the corpus's mean document length."""
    who, family = arm.split("-", 1)
    if who == "ours":
        sample = [] if args.sample_chars is None else ["--sample-chars", str(args.sample_chars)]
        base = [] if family == "sentencepiece" else ["--base", BASES[family]]
        return [sys.executable, "-c", "import sys; from vocab_extend.cli import main; sys.exit(main())", "merge",
                "--corpus", corpus.path, "--output-dir", str(out), "--overwrite", *base, *sample]
    budget = floor_sample_chars(args)
    sentences = round(budget * corpus.documents / corpus.chars) if budget else corpus.documents
    return [sys.executable, str(Path(__file__).resolve()), "--floor", family, "--floor-corpus", corpus.path,
            "--floor-out", str(out), "--floor-setup", str(args.floor_setup), "--sampler", args.sampler,
            "--sample-chars", str(budget), "--floor-sentences", str(max(sentences, 1))]


def heldout_chars_per_token(folder: Path, held_out: dict[str, list[str]]) -> dict[str, float]:
    """Chars/token of the merged ``tokenizer.json`` on each held-out kind (no special tokens)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    figures = {}
    for kind, docs in held_out.items():
        tokens = sum(len(e.ids) for e in tokenizer.encode_batch(docs, add_special_tokens=False))
        figures[kind] = round(sum(map(len, docs)) / tokens, 4)
    return figures


def _predicted_rss_gb(arm: str, size_mb: float, results: dict[str, Any]) -> tuple[float, str]:
    measured = [(entry["size_mb"], entry["figures"][arm]["peak_rss_gb"]) for entry in results.values()
                if arm in entry.get("figures", {}) and entry["size_mb"] < size_mb]
    if measured:
        mb, gb = max(measured)
        return gb / mb * size_mb, f"linear from {gb:.2f} GB at {mb:g} MB"
    return PRIOR_GB_PER_MB[arm] * size_mb, f"{PRIOR_GB_PER_MB[arm]} GB per MB (issue 20 at 20 MB)"


def _commit() -> str | None:
    """The checkout's commit (with ``+changes`` when files differ from it): the code a run measured."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                                "vocab_extend", "bench/*.py"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def _one_arm(arm: str, corpus: Generated, work: Path, args: argparse.Namespace,
             source: Source) -> dict[str, Any]:
    out = work / arm
    commit = _commit()
    run = run_measured(arm_command(arm, corpus, out, args), work / f"{arm}.log", int(args.max_rss_gb * 1e9))
    run["commit"] = commit
    if run["exit"] != 0:
        tail = (work / f"{arm}.log").read_text(encoding="utf-8", errors="replace")[-800:]
        run["log_tail"] = tail
        print(f"  {arm}: exit {run['exit']}{' (killed at --max-rss-gb)' if run['killed_at_max_rss'] else ''}",
              file=sys.stderr)
        return run
    if arm.startswith("ours"):
        run["heldout_chars_per_token"] = heldout_chars_per_token(out, source.held_out)
        report = read_json_object(out / "report.json")
        run["report_heldout_row"] = {k: v for k, v in report["corpora"].items() if k.endswith("(held out)")}
        run["added_pieces"] = report["added_pieces"]
        run["sample"] = report.get("sample")
        record = read_json_object(out / "run.json", missing_ok=True) or {}
        run["phase_seconds"] = record.get("phase_seconds")
        run["run_json_peak_rss_mb"] = record.get("peak_rss_mb")
    else:
        lines = (work / f"{arm}.log").read_text(encoding="utf-8").strip().splitlines()
        run["floor"] = json.loads(lines[-1])
    return run


def _median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r["exit"] == 0]
    if not ok:
        return {}
    figures = {k: round(statistics.median(r[k] for r in ok), 3) for k in ("wall_s", "cpu_s", "peak_rss_gb")}
    if "floor" in ok[0]:
        for key in ("train_wall_s", "read_and_sample_s"):
            figures[key] = round(statistics.median(r["floor"].get(key, 0.0) for r in ok), 2)
    for key in ("heldout_chars_per_token", "phase_seconds"):
        if ok[0].get(key):
            figures[key] = ok[0][key]
    figures["loadavg_1min"] = [r["loadavg_before"][0] for r in ok]
    return figures


def _ratios(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    ratios = {}
    for family in BASES:
        ours, floor = figures.get(f"ours-{family}"), figures.get(f"floor-{family}")
        if ours and floor:
            ratios[family] = {k: round(ours[k] / floor[k], 3) for k in ("wall_s", "cpu_s", "peak_rss_gb")}
            ratios[family]["wall_s_vs_floor_train_only"] = round(ours["wall_s"] / floor["train_wall_s"], 3)
        if ours and (reading := figures.get(f"floor-{family}-file")):
            ratios[family]["wall_s_vs_floor_reading_the_file"] = round(ours["wall_s"] / reading["wall_s"], 3)
            ratios[family]["peak_rss_gb_vs_floor_reading_the_file"] = round(
                ours["peak_rss_gb"] / reading["peak_rss_gb"], 3)
    return ratios


def _entry(size_mb: float, corpus: dict[str, Any], runs: dict[str, list], skipped: dict[str, str]) -> dict[str, Any]:
    figures = {arm: f for arm, r in runs.items() if (f := _median_figures(r))}
    return {"size_mb": size_mb, "corpus": corpus, "runs": runs, "figures": figures,
            "ratios_ours_over_floor": _ratios(figures), "skipped": skipped}


def run_size(label: str, source: Source, args: argparse.Namespace, results: dict[str, Any],
             save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Generate one size and run every arm on it (``--runs`` times, arms interleaved), saving after each run.
    Runs of other arms recorded earlier on the same corpus (same sha256) are kept."""
    size_mb = parse_size(label) / 1e6
    started = time.perf_counter()
    generated = generate(source, parse_size(label), args.seed, args.scratch / f"ja-{label}-seed{args.seed}.txt")
    print(f"{label}: corpus {generated.bytes:,} bytes ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    corpus = {k: v for k, v in vars(generated).items() if k not in ("path", "settings")}
    before = results.get(label, {})
    same = before.get("corpus", {}).get("sha256") == generated.sha256
    runs = {arm: r for arm, r in before.get("runs", {}).items() if same and arm not in args.arms}
    skipped = {arm: why for arm, why in before.get("skipped", {}).items() if same and arm not in args.arms}
    for arm in args.arms:
        predicted, how = _predicted_rss_gb(arm, size_mb, results)
        if predicted > args.max_rss_gb and not args.force:
            skipped[arm] = f"predicted peak RSS {predicted:.1f} GB ({how}) > --max-rss-gb {args.max_rss_gb:g}"
    for index in range(args.runs):
        for arm in [a for a in args.arms if a not in skipped]:
            print(f"  {label} run {index + 1}: {arm}", file=sys.stderr)
            work = Path(tempfile.mkdtemp(prefix=f"{arm}-", dir=args.scratch))
            runs.setdefault(arm, []).append(_one_arm(arm, generated, work, args, source))
            print(f"    {json.dumps({k: v for k, v in runs[arm][-1].items() if k != 'log_tail'})}", file=sys.stderr)
            save(_entry(size_mb, corpus, runs, skipped))
    entry = _entry(size_mb, corpus, runs, skipped)
    save(entry)
    return entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20MB,100MB,400MB,1GB", help="corpus sizes, comma-separated")
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora",
                        help="folder with ja/*.txt (default ../shared/corpora; else the bundled corpora/)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder for the corpora and outputs, outside the checkout (default: a temp dir)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--runs", type=int, default=1, help="runs of each arm per size, interleaved")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus generator")
    parser.add_argument("--max-rss-gb", type=float, default=16.0, help="skip (or kill) an arm past this peak RSS")
    parser.add_argument("--force", action="store_true", help="run arms predicted to pass --max-rss-gb")
    parser.add_argument("--sample-chars", type=int, default=None,
                        help="passed to the merge (default: none, the merge's default budget); the floors train "
                             "on the merge's sample of the same budget")
    parser.add_argument("--sampler", default=DEFAULT_SAMPLER, help="the merge's sampler, MODULE:FUNCTION")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "scaling.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "scaling.png")
    parser.add_argument("--floor", choices=tuple(FLOORS), help=argparse.SUPPRESS)
    parser.add_argument("--floor-sentences", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor-corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-setup", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.arms = [a for a in args.arms.split(",") if a]
    if unknown := [a for a in args.arms if a not in ARMS]:
        parser.error(f"unknown arm {unknown[0]}: choose from {', '.join(ARMS)}")
    return args


def _source_folder(corpora: Path) -> Path:
    if (corpora / "ja").is_dir():
        return corpora / "ja"
    print(f"note: {corpora}/ja is absent: generating from the bundled corpora/ja (70 KB, for smoke runs only)",
          file=sys.stderr)
    return ROOT / "corpora" / "ja"


def sample_setting(args: argparse.Namespace) -> str:
    """What the merge and the floors train on, as the JSON names it (figures of another setting are kept apart)."""
    budget = floor_sample_chars(args)
    default = " (the merge's default)" if args.sample_chars is None else ""
    return (f"the merge's content-hashed sample of {budget:,} characters{default} of its training documents "
            f"(the corpus without its held-out share); the floors train on exactly that sample"
            if budget else "the merge's whole training text (--sample-chars 0)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.floor:
        args.floor_out.mkdir(parents=True, exist_ok=True)
        print(json.dumps(FLOORS[args.floor](args.floor_corpus, args.floor_out, args)))
        return
    if not _merge_samples():
        raise SystemExit("error: this bench needs a merge that samples its corpus (merge --sample-chars)")
    args.scratch = args.scratch or Path(tempfile.mkdtemp(prefix="vocab-extend-scaling-"))
    args.scratch.mkdir(parents=True, exist_ok=True)
    args.floor_setup = floor_setup(args.scratch / "floor-setup")
    folder = _source_folder(args.corpora)
    source = load_source(folder)
    setting = sample_setting(args)
    previous = read_json_object(args.json, missing_ok=True) or {}
    results, earlier = split_earlier(previous, setting)

    def save(label: str, entry: dict[str, Any]) -> None:
        results[label] = entry
        figures = {
            "machine": machine(), "generator": {"source": folder.name, "held_out": source.held_out_figures(),
                                                "pool_documents": len(source.pool)},
            "floor_text": setting,
            "floors": {"floor-sentencepiece": "SentencePiece's trainer on the merge's sample (read and sampled "
                                              "by the merge's own code, in the floor's one process; the merge "
                                              "reads a large plain-text corpus on every core)",
                       "floor-sentencepiece-file": "SentencePiece's trainer reading the corpus file itself, "
                                                   "sampling as many shuffled sentences as the merge's sample "
                                                   "has documents (input_sentence_size)",
                       "floor-bytelevel": "tokenizers' BPE trainer on the merge's sample (read and sampled as "
                                          "for floor-sentencepiece)"},
            "median_of": "--runs runs per arm and size (see each size's runs)",
            "sizes": dict(sorted(results.items(), key=lambda item: item[1]["size_mb"])),
            "done_when": done_when(results),
            "earlier_settings": earlier,
            "notes": previous.get("notes", {}),  # written by hand, kept as they are
        }
        atomic_write_json(args.json, figures)
        plot(results, args.plot, ARMS)

    for label in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        run_size(label, source, args, results, functools.partial(save, label))
    print(json.dumps({k: v["figures"] for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
