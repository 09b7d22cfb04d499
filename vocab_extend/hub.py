"""Whether the Hugging Face Hub can be reached, found out in seconds rather than through the retries.

``huggingface_hub`` and ``datasets`` retry a failed connection five times with back-off, so a Hub id given
on a machine without network only fails after about 25 seconds. :func:`unreachable_reason` asks once per
process, with one short TCP connection to the Hub's host (``HF_ENDPOINT`` is honoured), and says why the
Hub cannot be used: ``HF_HUB_OFFLINE`` is set, the host name does not resolve, or nobody answers (behind
an HTTPS proxy it does not guess and leaves the answer to the Hub libraries).
Callers then use only the local Hub cache (``local_files_only=True``) and say so when the file is not
there. Nothing here downloads anything.

>>> import os
>>> os.environ["HF_HUB_OFFLINE"] = "1"; unreachable_reason.cache_clear()
>>> unreachable_reason()
'HF_HUB_OFFLINE is set'
>>> del os.environ["HF_HUB_OFFLINE"]; unreachable_reason.cache_clear()
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 3.0
_TRUE = ("1", "on", "yes", "true")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@functools.lru_cache(maxsize=1)
def unreachable_reason() -> str | None:
    """Why the Hub cannot be reached now (one short phrase), or ``None`` when it answers."""
    if any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # through a proxy only the Hub libraries themselves can tell
    url = urlparse(endpoint())
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except socket.gaierror:
        return f"{host} does not resolve (no network or no DNS)"
    except TimeoutError:
        return f"{host} does not answer within {CONNECT_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"{host} cannot be reached ({exc.strerror or exc})"
