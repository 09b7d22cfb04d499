"""The model card (``README.md``) of every model folder we write, and publishing a folder to the Hub.

The card carries Hub metadata (``base_model``, ``language``, ``library_name``, ``tags``, ``license`` when
the base's is known), how the model was made (tokenizer, added pieces, initialisation, training stages
and tokens seen), the token-reduction table of the merge, bits per byte when measured, and the commands
to reproduce it. Nothing machine-specific is written: paths appear as the user typed them.

>>> hub_base_model("smollm2-135m"), hub_base_model("org/name"), hub_base_model("./outputs/x")
('HuggingFaceTB/SmolLM2-135M-Instruct', 'org/name', None)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import ModelCard, ModelCardData

from ..errors import VocabExtendError
from ..sources import is_hub_id

CARD_FILE = "README.md"
# what the bundled aliases are on the Hub, and their licences
KNOWN_BASES = {
    "smollm2-135m": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "mistral-7b-v0.1": ("mistralai/Mistral-7B-v0.1", "apache-2.0"),
}


def hub_base_model(spec: str) -> str | None:
    """The Hub id of a base given as an alias or a Hub id; ``None`` for a local path."""
    if spec in KNOWN_BASES:
        return KNOWN_BASES[spec][0]
    return spec if is_hub_id(spec) and not Path(spec).exists() else None


def base_license(spec: str) -> str | None:
    """The licence of the base: known for the aliases, read from a local base folder's own card."""
    if spec in KNOWN_BASES:
        return KNOWN_BASES[spec][1]
    card = Path(spec) / CARD_FILE
    if card.is_file():
        try:
            return ModelCard.load(card).data.license
        except Exception:  # a card without metadata, or not a card at all
            return None
    return None


def _reduction_table(corpora: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| corpus | chars/token base | chars/token extended | fewer tokens |", "|---|---:|---:|---:|"]
    for name, c in corpora.items():
        lines.append(f"| {name} | {c['chars_per_token_base']:.3f} | {c['chars_per_token_extended']:.3f} "
                     f"| {c['reduction']:.1%} |")
    return lines


def _bpb_table(bpb: Mapping[str, float]) -> list[str]:
    return ["| corpus | bits per byte |", "|---|---:|", *(f"| {name} | {value:.4f} |" for name, value in bpb.items())]


def render_card(*, title: str, base: str, lang: str, made: Sequence[str], tokenizer_report: Mapping[str, Any] | None,
                bpb: Mapping[str, float] | None, commands: Sequence[str], tags: Sequence[str] = ()) -> ModelCard:
    """A model card with Hub metadata and the sections above."""
    languages = lang.split("+")  # a multi-language merge records "th+vi"
    data = ModelCardData(base_model=hub_base_model(base), language=languages, library_name="transformers",
                         license=base_license(base), tags=["vocab-extend", "vocabulary-extension", *languages, *tags])
    body = [f"# {title}", "", "## How it was made", "", *[f"- {line}" for line in made], ""]
    if tokenizer_report and tokenizer_report.get("corpora"):
        body += ["## Tokens needed", "", "Figures on *(held out)* corpora are on text the tokenizer was not "
                 "trained on.", "", *_reduction_table(tokenizer_report["corpora"]), ""]
    if bpb:
        body += ["## Bits per byte", "", "Lower is better; comparable across tokenizers.", "", *_bpb_table(bpb), ""]
    body += ["## Reproduce", "", "```bash", *commands, "```", "",
             "Made with vocab-extend.", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def read_tokenizer_report(folder: Path) -> dict[str, Any] | None:
    """The merge's ``report.json`` in a tokenizer folder, when it is there."""
    path = Path(folder) / "report.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        return None


def push_folder(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Upload a written model folder to the Hub repo ``repo_id`` (created when missing); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload with vocab-extend")
    except Exception as exc:  # offline, no token, no rights: the folder is written, only the upload failed
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise VocabExtendError(
            f"could not push {folder} to the Hub repo {repo_id} ({type(exc).__name__}: {reason}); the folder is "
            "complete: check your network and `huggingface-cli login`, then upload it with `huggingface-cli upload`"
        ) from None
    return f"https://huggingface.co/{repo_id}"
