"""``bench/gpu_check.sh --tiny``: the prepared GPU check runs end to end on a CPU and writes its summary.

The same path as on a GPU (throughput and MFU of our loop; ``extension_pays.py`` with merge, init-model,
a probe run, the time-budgeted arms), with a pico model and a handful of steps. Part (b) needs the shared
corpora; without them the summary says it was skipped. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHARED

pytestmark = pytest.mark.slow


def test_gpu_check_tiny_writes_both_parts(tmp_path: Path) -> None:
    out = tmp_path / "check"
    present = (SHARED / "ja" / "jaquad_train_wikipedia.txt").is_file()
    corpora = ["--corpora", str(SHARED if present else tmp_path / "no-corpora")]
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(out), "--tiny", *corpora],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    assert summary["tiny"] is True
    assert summary["machine"]["torch"]
    a = summary["a_throughput"]
    assert a["status"] == "ok", a
    assert a["model"] == "pico" and a["ours_tokens_per_s"] > 0 and a["steps_measured"] >= 1
    assert a["mfu"] is None  # a CPU has no MFU
    b = summary["b_extension_pays"]
    if not present:
        assert b["status"].startswith("skipped: no corpora"), b
        return
    assert b["preparation"] == "ok" and b["arms_run"] == ["base", "mean", "distill"], b
    # on cores busy with other jobs the probe can misjudge the time left, and the last arm be cut short by
    # the timeout: the arms that finished are then summarised (the partial JSON written after each arm)
    assert b["status"] == "ok" or b["status"].startswith("timed out"), b
    assert b["plan"]["time_budget"]["probe"]["tokens_per_s"] > 0 and b["arms_done"][0] == "base"
    full = json.loads((out / "extension_pays.json").read_text(encoding="utf-8"))
    assert full["complete"] is (b["status"] == "ok") and full["machine"]["device"] == "cpu"
    for arm in full["arms_done"]:
        assert len(full["curves"][arm]["bpb"]["ja"]) >= 2
    if b["status"] == "ok":
        assert set(b["crossing"]) == {"mean", "distill"}


def test_gpu_check_usage() -> None:
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr
