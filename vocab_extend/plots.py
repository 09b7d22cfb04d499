"""Plots the reports share; PNGs are written without a timestamp, so the same figures give the same file."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping

from .atomic import atomic_write_bytes


def plot_chars_per_token(results: Mapping[str, Mapping[str, Mapping[str, float]]], path: Path,
                         title: str = "Characters per token (higher is better)") -> None:
    """A grouped bar chart of characters per token, one group per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(results)
    names = list(next(iter(results.values())))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(corpora) + 2), 3.6), dpi=100)
    for k, name in enumerate(names):
        values = [results[c][name]["chars_per_token"] for c in corpora]
        bars = ax.bar([i + k * width for i in range(len(corpora))], values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(corpora))], corpora)
    ax.set_ylabel("characters per token")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)
