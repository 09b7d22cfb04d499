"""Files and a full disk for the newer cases of ``bad_inputs.py``: corpora nested too deeply for the JSON parser,
GGUF files without a tokenizer whose config does not validate, and a 1 MiB tmpfs (or a simulated full disk
where mounting is not allowed)."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import ContextManager, Iterator
from unittest import mock


def bad_gguf(path: Path, heads: int | None) -> Path:
    """A llama GGUF header without tokenizer keys, with ``heads`` attention heads for a hidden size of 32 (5 and
    -3 fail transformers' config validation, 0 divides by zero); ``None``: the file cut after 24 bytes."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, "llama")
    for key, value in {"context_length": 64, "embedding_length": 32, "block_count": 1, "feed_forward_length": 64,
                       "attention.head_count_kv": 1}.items():
        writer.add_uint32(f"llama.{key}", value)
    writer.add_int32("llama.attention.head_count", 0 if heads is None else heads)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_tensor("token_embd.weight", np.zeros((10, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if heads is None:
        path.write_bytes(path.read_bytes()[:24])
    return path


def robust_files(tmp: Path) -> dict[str, Path]:
    """Corpora nested too deeply for the JSON parser, and GGUF files without a tokenizer and a bad config."""
    deep = 100_000
    made = {"deep_json": tmp / "deep.json", "deep_field": tmp / "deep-field.json", "deep_jsonl": tmp / "deep.jsonl"}
    made["deep_json"].write_text("[" * deep + "]" * deep, encoding="utf-8")
    made["deep_field"].write_text('{"text": ' + "[" * deep + "]" * deep + "}", encoding="utf-8")
    made["deep_jsonl"].write_text('{"text": "一行目"}\n{"text": ' + "[" * deep + "]" * deep + "}\n", encoding="utf-8")
    for name, heads in {"gguf_5_heads": 5, "gguf_negative_heads": -3, "gguf_0_heads": 0, "gguf_cut": None}.items():
        made[name] = bad_gguf(tmp / f"{name}.gguf", heads)
    return made


class FullDisk:
    """A 1 MiB tmpfs for the full-disk cases, or a simulated one where mounting is not allowed."""

    def __init__(self, tmp: Path) -> None:
        self.folder = tmp / "full"
        self.folder.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(self.folder)]
        try:
            self.mounted = subprocess.run(mount, capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            self.mounted = False

    def close(self) -> None:
        if self.mounted:
            gc.collect()  # a failed export's GGUF writer may still hold its deleted file open
            subprocess.run(["umount", str(self.folder)], capture_output=True, timeout=30)

    @contextlib.contextmanager
    def filled(self) -> Iterator[None]:
        """No byte free (measure, evaluate-bpb: their lock file is the first thing they write)."""
        if not self.mounted:
            with self.simulated():
                yield
            return
        filler = self.folder / ".filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 65536):
                pass
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        try:
            yield
        finally:
            filler.unlink()

    def empty(self) -> ContextManager[None]:
        """1 MiB free, less than the file (export-gguf fails part-way through its tensors)."""
        return contextlib.nullcontext() if self.mounted else self.simulated()

    @contextlib.contextmanager
    def simulated(self) -> Iterator[None]:
        import gguf

        def no_space(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def short_write(self: object, *args: object, **kwargs: object) -> None:
            raise OSError("1050752 requested and 154096 written")  # what numpy's tofile says

        with mock.patch("os.pwrite", no_space), mock.patch.object(gguf.GGUFWriter, "write_tensor_data", short_write):
            yield


@contextlib.contextmanager
def held_by_another_process(folder: Path) -> Iterator[None]:
    """``folder``'s output lock held by another process (a run still going) while the case runs."""
    code = ("import sys, time\nfrom vocab_extend.locks import output_lock\n"
            f"with output_lock({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).resolve().parents[1]))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
