"""A GGUF file checked against the HF folder it came from, by llama.cpp itself (``vocab-extend check-gguf``,
whose options are in :mod:`.check_cli`).

Two comparisons, each read back by something other than the exporter:

- **ids**: every line of the text is tokenized by llama.cpp reading the GGUF (``add_special``: BOS/EOS as
  the file's ``add_bos_token``/``add_eos_token`` say, which the export copies from the folder) and by the
  folder's own HF tokenizer (``tokenizer(line)``, special tokens added as the folder says); the lists must be
  equal, line by line.
- **log-probabilities** (when a model folder is given, or the tokenizer folder holds the model too): at every
  prefix of a few short lines, llama.cpp's 10 most likely next tokens and their log-probabilities against
  the HF model's (float32) log-probabilities of the same tokens. llama.cpp runs with an f32 KV cache and
  without flash attention (whose CPU kernel rounds queries to f16), so the comparison measures the file's
  weights. llama.cpp reports nothing at a position whose most likely token ends inside a UTF-8 character;
  such positions are skipped (and counted out).

Tolerances, measured on the bundled SmolLM2-135M extended with Japanese (52,352 rows; 569 positions of 40
lines) and on a pico LLaMA (344 positions), |Δ log-probability| in nats:

======  =====================  ======================  ==========================================
type    SmolLM2 max (mean)     pico max (mean)         tolerance
======  =====================  ======================  ==========================================
f32     3.0e-4 (1.2e-4)        8.6e-6 (3.2e-6)         max <= 1e-3
f16     0.13 (0.0074)          0.0073 (0.0025)         max <= 0.3
q8_0    4.3 (0.26)             0.19 (0.062)            mean <= 0.75
======  =====================  ======================  ==========================================

llama.cpp's q8_0 kernels round the activations to 8 bits as well, so a few positions of a model with large
activations (SmolLM2) move by nats (4.3 at one; the same file read back by transformers: 0.16 there): for
quantized files the mean is bounded, not the maximum. A broken export moves both (the same SmolLM2 written
without the rotary reorder: mean 3.5, max 18). Other weight types (a file quantized further with
``llama-quantize``) get :data:`OTHER_TOLERANCE` on the mean unless ``--tolerance`` says otherwise.

Invariant: the check never writes anything; llama.cpp's server listens on a free local port for the run.

>>> tolerance_for({"F32"}), tolerance_for({"F32", "F16"}), tolerance_for({"Q8_0", "F16"})
(('max', 0.001), ('max', 0.3), ('mean', 0.75))
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm import tqdm

from ...console import log
from ...errors import VocabExtendError
from ...tokenizer.checks import BASE_LANGUAGE_PROBES
from ...tokenizer.folder import TokenizerFolder
from ...tokenizer.inputs import SAMPLE_CORPORA
from ...tokenizer.loader import load_tokenizer
from ..loading import load_model

INSTALL_HINT = 'pip install "vocab-extend[gguf-check]" (llama.cpp\'s CPU wheel, xllamacpp)'
# matrix type -> (the statistic of |Δ log-probability| that is bounded, its bound in nats)
TOLERANCES = {"F32": ("max", 1e-3), "F16": ("max", 0.3), "BF16": ("max", 0.3), "Q8_0": ("mean", 0.75)}
OTHER_TOLERANCE = ("mean", 1.5)
LOGPROB_LINES = 4  # the first two and the last two lines of the text
LOGPROB_TOKENS = 24  # prefixes of at most this many tokens
TOP = 10


def tolerance_for(weight_types: set[str]) -> tuple[str, float]:
    """The loosest tolerance of the matrix types a file holds: a bound on the mean when any is quantized,
    else on the maximum (see the module docstring)."""
    bounds = [TOLERANCES.get(kind, OTHER_TOLERANCE) for kind in weight_types or {"F32"}]
    statistic = "mean" if any(kind == "mean" for kind, _ in bounds) else "max"
    return statistic, max(bound for kind, bound in bounds if kind == statistic)


@dataclass(frozen=True)
class GGUFFacts:
    """What the check reads from the file before llama.cpp opens it."""

    rows: int
    weight_types: set[str]

    def describe(self) -> str:
        return "/".join(sorted(self.weight_types)).lower() or "f32"


@dataclass
class CheckResult:
    """What :func:`check_gguf` found; :meth:`verdict` is the one line the command prints."""

    lines: int = 0
    tokens: int = 0
    mismatched: int = 0
    first_mismatch: str = ""
    errors: list[float] = field(default_factory=list)  # per position: the largest |Δ| of llama.cpp's best tokens
    skipped: int = 0
    worst: str = ""
    tolerance: tuple[str, float] = ("max", 0.0)
    weights: str = ""

    @property
    def max_error(self) -> float | None:
        return max(self.errors) if self.errors else None

    @property
    def mean_error(self) -> float | None:
        return sum(self.errors) / len(self.errors) if self.errors else None

    @property
    def ok(self) -> bool:
        if self.mismatched or not self.errors:
            return not self.mismatched
        statistic, bound = self.tolerance
        return (self.max_error if statistic == "max" else self.mean_error) <= bound

    def verdict(self) -> str:
        """One line: ``check-gguf: OK — ...`` or ``check-gguf: FAILED — ...``."""
        if self.mismatched:
            return (f"check-gguf: FAILED — {self.mismatched:,} of {self.lines:,} lines tokenize differently; "
                    f"first: {self.first_mismatch}")
        ids = f"{self.lines:,} lines, identical ids ({self.tokens:,} tokens)"
        if not self.errors:
            return f"check-gguf: OK — {ids}; log-probabilities not compared (no model folder)"
        statistic, bound = self.tolerance
        error = (f"max |Δ logprob| = {self.max_error:.2g} (mean {self.mean_error:.2g}) over {len(self.errors)} "
                 f"positions; tolerance: {statistic} <= {bound:g} for {self.weights} weights")
        if not self.ok:
            return f"check-gguf: FAILED — {ids}, but {error}; worst at {self.worst}"
        return f"check-gguf: OK — {ids}; {error}"


def read_facts(path: Path) -> GGUFFacts:
    """The vocabulary size and matrix types of a GGUF file; one sentence for a file that is not one."""
    from gguf import GGUFReader

    if not path.is_file():
        raise VocabExtendError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        reader = GGUFReader(path)
        tokens = reader.fields["tokenizer.ggml.tokens"]
        kinds = {t.tensor_type.name for t in reader.tensors if len(t.shape) > 1}
        rows = len(tokens.data)
    except KeyError:
        raise VocabExtendError(f"{path} holds no tokenizer (tokenizer.ggml.tokens): export it with "
                               "`vocab-extend export-gguf`") from None
    except (ValueError, OSError, IndexError, TypeError) as exc:
        raise VocabExtendError(f"{path} is not a readable GGUF file ({exc})") from None
    return GGUFFacts(rows, kinds)


class LlamaCpp:
    """llama.cpp's server on a GGUF file, through the ``xllamacpp`` wheel (CPU build), on a free local port.

    ``exact=True`` keeps the KV cache in f32 and turns flash attention off, so that log-probabilities differ
    from transformers' by the file's rounding only.
    """

    def __init__(self, gguf_file: Path, *, exact: bool = True, n_ctx: int = 1024) -> None:
        if importlib.util.find_spec("xllamacpp") is None:
            raise VocabExtendError(f"check-gguf needs llama.cpp: {INSTALL_HINT}")
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf_file)
        params.n_ctx = n_ctx
        params.n_parallel = 1
        params.verbosity = -1  # llama.cpp's log stays quiet: the verdict is the one line the user reads
        if exact:
            params.cache_type_k = params.cache_type_v = xllamacpp.ggml_type.GGML_TYPE_F32
            params.flash_attn_type = xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
        try:
            self.server = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise VocabExtendError(f"llama.cpp could not load {gguf_file} ({exc})") from None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.server.listening_address + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())

    def tokenize(self, text: str) -> list[int]:
        """The ids llama.cpp gives ``text``, special tokens added as the file says."""
        return self.post("/tokenize", {"content": text, "add_special": True})["tokens"]

    def next_logprobs(self, ids: Sequence[int]) -> dict[int, float]:
        """The ``TOP`` most likely next tokens after ``ids`` and their log-probabilities (empty where llama.cpp
        holds back a token that ends inside a UTF-8 character)."""
        result = self.post("/completion", {"prompt": list(ids), "n_predict": 1, "temperature": 0, "n_probs": TOP,
                                           "post_sampling_probs": False, "return_tokens": True})
        scored = result.get("completion_probabilities") or []
        return {entry["id"]: entry["logprob"] for entry in scored[0]["top_logprobs"]} if scored else {}

    def close(self) -> None:
        self.__dict__.pop("server", None)  # the server stops when its object goes

    def __enter__(self) -> "LlamaCpp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file; one sentence for a missing or unreadable one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VocabExtendError(f"--text {path} does not exist") from None
    except IsADirectoryError:
        raise VocabExtendError(f"--text {path} is a folder: give a text file, one line per check") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabExtendError(f"--text {path} is not a readable UTF-8 text file ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise VocabExtendError(f"--text {path} has no non-blank line to check")
    return lines


def default_lines(folder: TokenizerFolder | None) -> list[str]:
    """Base-language probes, the bundled English sample and the bundled sample of the folder's language."""
    files = sorted((SAMPLE_CORPORA / "en").glob("*.txt"))
    lang = folder.metadata.lang if folder is not None and folder.metadata is not None else ""
    for code in lang.split(","):
        if code and code != "en" and (SAMPLE_CORPORA / code).is_dir():
            files += sorted((SAMPLE_CORPORA / code).glob("*.txt"))
    lines = list(BASE_LANGUAGE_PROBES)
    for file in files:
        lines += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def _describe_mismatch(index: int, line: str, got: list[int], want: list[int], tokenizer) -> str:
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))

    def piece(ids: list[int]) -> str:
        return f"{ids[at]} {tokenizer.decode([ids[at]])!r}" if at < len(ids) else "(end)"

    shown = line if len(line) <= 60 else line[:57] + "..."
    return f"line {index + 1} {shown!r}, token {at}: llama.cpp {piece(got)} vs transformers {piece(want)}"


def compare_ids(llama: LlamaCpp, tokenizer, lines: list[str], result: CheckResult) -> None:
    """Tokenize each line both ways; count the lines that differ and describe the first."""
    for index, line in enumerate(tqdm(lines, desc="check-gguf: ids", unit=" lines", leave=False, mininterval=1.0)):
        want, got = tokenizer(line)["input_ids"], llama.tokenize(line)
        result.lines += 1
        result.tokens += len(want)
        if got != want:
            result.mismatched += 1
            if not result.first_mismatch:
                result.first_mismatch = _describe_mismatch(index, line, got, want, tokenizer)


def logprob_lines(lines: list[str]) -> list[str]:
    """The few short lines whose prefixes are compared: the first two and the last two of the text."""
    half = LOGPROB_LINES // 2
    chosen = lines[:half] + lines[max(half, len(lines) - half):]
    return list(dict.fromkeys(chosen))


def compare_logprobs(llama: LlamaCpp, model, tokenizer, lines: list[str], result: CheckResult) -> None:
    """At every prefix of the chosen lines: llama.cpp's best next tokens against the HF model's log-probs."""
    for line in tqdm(logprob_lines(lines), desc="check-gguf: log-probabilities", unit=" lines", leave=False):
        ids = tokenizer(line)["input_ids"][:LOGPROB_TOKENS]
        with torch.no_grad():
            want = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        for cut in range(1, len(ids) + 1):
            best = llama.next_logprobs(ids[:cut])
            if not best:
                result.skipped += 1
                continue
            error = max(abs(logprob - float(want[cut - 1, token])) for token, logprob in best.items())
            if not result.errors or error > max(result.errors):
                shown = line if len(line) <= 40 else line[:37] + "..."
                result.worst = f"{shown!r} after {cut} tokens"
            result.errors.append(error)


def model_folder(tokenizer_dir: Path, model_dir: Path | None) -> Path | None:
    """The model folder to compare log-probabilities with: ``--model``, else the tokenizer folder when it holds
    a model (``config.json`` and safetensors weights), else none."""
    if model_dir is not None:
        if not (model_dir / "config.json").is_file():
            raise VocabExtendError(f"--model {model_dir} has no config.json: give a Hugging Face model folder")
        return model_dir
    has_weights = any(tokenizer_dir.glob("model*.safetensors"))
    return tokenizer_dir if (tokenizer_dir / "config.json").is_file() and has_weights else None


def check_gguf(gguf_file: str | Path, tokenizer_dir: str | Path, *, text: str | Path | None = None,
               model_dir: str | Path | None = None, tolerance: float | None = None) -> CheckResult:
    """Compare ``gguf_file`` in llama.cpp with the HF tokenizer (and model) it was exported from."""
    gguf_file, tokenizer_dir = Path(gguf_file), Path(tokenizer_dir)
    if not tokenizer_dir.is_dir():
        raise VocabExtendError(f"--tokenizer {tokenizer_dir} is not a folder: give the folder the GGUF was "
                               "exported from")
    facts = read_facts(gguf_file)
    folder = TokenizerFolder.find(tokenizer_dir)
    lines = read_lines(Path(text)) if text is not None else default_lines(folder)
    models = model_folder(tokenizer_dir, None if model_dir is None else Path(model_dir))
    log(f"checking {gguf_file.name} ({facts.describe()}) on {len(lines):,} lines: loading it in llama.cpp"
        + (f" and {models} in transformers" if models is not None else ""))
    tokenizer = load_tokenizer(str(tokenizer_dir))
    statistic, bound = tolerance_for(facts.weight_types)
    result = CheckResult(weights=facts.describe(), tolerance=(statistic, tolerance or bound))
    with LlamaCpp(gguf_file) as llama:
        compare_ids(llama, tokenizer, lines, result)
        if models is not None and not result.mismatched:
            model = load_model(str(models), dtype="float32")
            if model.get_input_embeddings().weight.shape[0] != facts.rows:
                raise VocabExtendError(f"{models} has {model.get_input_embeddings().weight.shape[0]:,} embedding "
                                       f"rows but {gguf_file} {facts.rows:,} vocabulary entries: give the model "
                                       "folder the file was exported from")
            compare_logprobs(llama, model, tokenizer, lines, result)
    return result
