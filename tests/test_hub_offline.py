"""Without network, a Hub id or ``hf:`` corpus is one sentence at once, not after the Hub libraries' retries.

The Hub's host is pointed at a closed local port (``HF_ENDPOINT``), so the probe gets "connection refused"
immediately on any machine; no test here can reach the real Hub.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLE_JA
from vocab_extend import hub
from vocab_extend.cli import main


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    hub.unreachable_reason.cache_clear()
    yield
    hub.unreachable_reason.cache_clear()


def test_the_probe_names_the_reason(no_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub.unreachable_reason() == "127.0.0.1 cannot be reached (Connection refused)"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.unreachable_reason.cache_clear()
    assert hub.unreachable_reason() == "HF_HUB_OFFLINE is set"


@pytest.mark.parametrize("argv, says", [
    (["merge", "--base", "someone/some-model", "--corpus", str(SAMPLE_JA)], "its tokenizer is not in the local Hub cache"),
    (["merge", "--corpus", "hf:someone/some-dataset"], "could not stream hf:someone/some-dataset: the Hub cannot"),
    (["measure", "--tokenizer", "someone/some-model", "--corpus", str(SAMPLE_JA)], "could not load the tokenizer"),
    (["evaluate-bpb", "--model", "someone/some-model", "--corpus", f"ja={SAMPLE_JA}"], "could not load the tokenizer"),
], ids=["merge base", "merge hf corpus", "measure", "evaluate-bpb"])
def test_a_hub_spec_offline_is_one_sentence(no_hub, tmp_path: Path, capsys, monkeypatch, argv, says) -> None:
    import huggingface_hub

    def no_retries(*args, **kwargs):  # the real call would retry for ~25 s; only the local cache may be read
        assert kwargs.get("local_files_only") is True, "the Hub was asked although it cannot be reached"
        raise huggingface_hub.errors.LocalEntryNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_retries)
    if argv[0] == "merge":
        argv = [*argv, "--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and says in err[-1] and "the Hub cannot be reached (127.0.0.1" in err[-1]
    assert not (tmp_path / "out").exists()
