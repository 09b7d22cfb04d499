"""The figures of ``bench/scaling.py`` beyond the runs: the machine, issue 20's done-when lines, the figures
of earlier sampling settings kept apart, and the plot of peak RSS and wall time against corpus size."""

from __future__ import annotations

import io
import os
import platform
from pathlib import Path
from typing import Any, Sequence

from scaling_floor import BASES

from vocab_extend.atomic import atomic_write_bytes


def split_earlier(previous: dict[str, Any], setting: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sizes of ``previous`` measured with ``setting`` (kept and extended), and those of other settings
    (kept apart, under the setting they were measured with)."""
    earlier = dict(previous.get("earlier_settings", {}))
    before = previous.get("floor_text")
    if before == setting or not previous.get("sizes"):
        return dict(previous.get("sizes", {})), earlier
    earlier[before or "unknown"] = previous["sizes"]
    return {}, earlier


def done_when(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 20's lines on the largest and the 100 MB size: peak RSS ≤ 4 GB, within 10% of 100 MB, and the
    merge's wall ≤ 1.2× the floor's (read and sample and train) on the same sample."""
    largest = max(results.values(), key=lambda e: e["size_mb"], default=None)
    reference = next((e for e in results.values() if e["size_mb"] == 100.0), None)
    if largest is None:
        return {}
    checks: dict[str, Any] = {"size_mb": largest["size_mb"]}
    for family in BASES:
        ours = largest["figures"].get(f"ours-{family}")
        if not ours:
            continue
        line: dict[str, Any] = {"peak_rss_gb": ours["peak_rss_gb"], "rss_at_most_4gb": ours["peak_rss_gb"] <= 4.0}
        if reference and f"ours-{family}" in reference["figures"]:
            growth = ours["peak_rss_gb"] / reference["figures"][f"ours-{family}"]["peak_rss_gb"]
            line.update(rss_over_100mb=round(growth, 3), rss_within_10pct_of_100mb=growth <= 1.1)
        ratio = largest["ratios_ours_over_floor"].get(family, {}).get("wall_s")
        if ratio is not None:
            line.update(wall_over_floor=ratio, wall_at_most_1_2x=ratio <= 1.2)
        checks[family] = line
    return checks


def plot(results: dict[str, Any], path: Path, arms: Sequence[str]) -> None:
    """Peak RSS and wall seconds against corpus size, one line per arm (solid: ours, dashed: the floor)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = sorted(results.values(), key=lambda e: e["size_mb"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for ax, key, label in ((axes[0], "peak_rss_gb", "peak RSS (GB)"), (axes[1], "wall_s", "wall time (s)")):
        for arm in arms:
            points = [(e["size_mb"], e["figures"][arm][key]) for e in entries if arm in e.get("figures", {})]
            if points:
                ours = arm.startswith("ours")
                ax.plot(*zip(*points), marker="o" if ours else "s",
                        linestyle="-" if ours else ":" if arm.endswith("file") else "--",
                        fillstyle="full" if ours else "none", label=arm,
                        color="tab:blue" if "sentencepiece" in arm else "tab:orange")
        ax.set_xscale("log")
        ax.set_xlabel("synthetic Japanese corpus (MB)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("vocab-extend merge against the library's own trainer (same text, same cores)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)


def machine() -> dict[str, Any]:
    """The machine the figures were taken on (cores shared with other jobs: see each run's load average)."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(memory / 1e9, 1),
            "python": platform.python_version(),
            "note": "CPU only; the cores are shared with other jobs, so each run records the load average"}
