"""The encoder's ways of running the bundled model: ONNX Runtime gives PyTorch's vectors, is
exported once per set of weights, and a model or setting it cannot serve leaves PyTorch in charge
or fails start-up with the setting's name."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice_agent.errors import ConfigError
from voice_agent.rag.encoder import Encoder
from voice_agent.rag.onnx_encoder import OnnxUnsupported, onnx_forward

pytestmark = pytest.mark.model

SENTENCES = [
    "What time do you open on Saturday?",
    "Hi",
    "My card has not arrived yet and I would like to know what the fee is to send money abroad.",
    "word " * 400,  # longer than the model's 256 tokens: cut the same way by both
]


@pytest.fixture(scope="module")
def model(encoder: Encoder) -> Any:
    return encoder._model


def test_onnx_runtime_gives_the_same_vectors_as_pytorch(model: Any, tmp_path: Path) -> None:
    forward, path = onnx_forward(model, tmp_path, threads=1)
    torch_vectors = Encoder._forward(model, SENTENCES)
    onnx_vectors = forward(SENTENCES)  # one padded batch
    assert path.parent == tmp_path and path.suffix == ".onnx"
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == torch_vectors.shape
    assert np.abs(onnx_vectors - torch_vectors).max() < 1e-5
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-6)


def test_the_export_is_made_once_and_reused(model: Any, tmp_path: Path) -> None:
    _, first = onnx_forward(model, tmp_path, threads=1)
    made = first.stat().st_mtime_ns
    _, second = onnx_forward(model, tmp_path, threads=1)
    assert second == first and second.stat().st_mtime_ns == made
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial file left


def test_the_encoder_reports_the_runtime_it_chose(model: Any, tmp_path: Path) -> None:
    forced = Encoder(model, runtime="onnx", cache_dir=tmp_path)
    assert (forced.runtime, forced.precision) == ("onnx", "float32")
    plain = Encoder(model, runtime="torch", precision="float32")
    assert (plain.runtime, plain.precision) == ("torch", "float32")
    chosen = Encoder(model, cache_dir=tmp_path)  # by agreement, not by timing
    assert (chosen.runtime, chosen.precision) == ("onnx", "float32")
    asked = Encoder(model, precision="bfloat16")
    assert (asked.runtime, asked.precision) == ("torch", "bfloat16")
    assert np.abs(forced.encode_sync(SENTENCES) - plain.encode_sync(SENTENCES)).max() < 1e-5


def test_int8_is_asked_for_by_name_made_once_and_gives_the_same_vectors_every_start(
    model: Any, tmp_path: Path
) -> None:
    first = Encoder(model, runtime="onnx-int8", cache_dir=tmp_path)
    assert (first.runtime, first.precision) == ("onnx", "int8")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith("-int8.onnx")  # beside the float32 export
    again = Encoder(model, runtime="onnx-int8", cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # made once, reused
    vectors = first.encode_sync(SENTENCES)
    assert np.array_equal(vectors, again.encode_sync(SENTENCES))  # the same decisions
    reference = Encoder._forward(model, SENTENCES)
    cosine = np.sum(vectors * reference, axis=1)
    assert cosine.min() > 0.95 and cosine.max() < 1 - 1e-5  # close, and really quantized


class Unsupported:
    """A pipeline that is not Transformer, Pooling, Normalize."""

    def __iter__(self) -> Any:
        return iter([object()])


def test_a_model_onnx_cannot_run_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(OnnxUnsupported, match="only Transformer, Pooling"):
        onnx_forward(Unsupported(), tmp_path, threads=1)


def test_a_folder_the_export_cannot_be_written_to_leaves_the_encoder_on_pytorch(
    model: Any, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(OnnxUnsupported, match="cannot write the export"):
        onnx_forward(model, blocked / "encoders", threads=1)
    fallback = Encoder(model, precision="float32", cache_dir=blocked / "encoders")
    assert fallback.runtime == "torch"
    with pytest.raises(ConfigError, match="VOICE_AGENT_ENCODER_RUNTIME=onnx"):
        Encoder(model, runtime="onnx", cache_dir=blocked / "encoders")


def test_onnx_forced_with_bfloat16_fails_with_the_setting_named(model: Any) -> None:
    with pytest.raises(ConfigError, match="VOICE_AGENT_ENCODER_RUNTIME=onnx"):
        Encoder(model, runtime="onnx", precision="bfloat16")


async def test_a_sentence_the_model_cannot_take_fails_only_its_own_embedding(
    encoder: Encoder,
) -> None:
    """Calls' sentences share a batch: a lone surrogate (which the tokenizer refuses) in one
    must not hand its exception to the others waiting in the same batch."""
    results = await asyncio.gather(
        encoder.embed("What time do you open on Saturday?"),
        encoder.embed("hi \ud800 there"),
        encoder.embed("Do you deliver?"),
        return_exceptions=True,
    )
    good_1, bad, good_2 = results
    assert isinstance(bad, Exception)
    assert isinstance(good_1, np.ndarray) and isinstance(good_2, np.ndarray)
    assert np.allclose(good_2, encoder.encode_sync(["Do you deliver?"])[0], atol=1e-5)


async def test_answers_to_store_are_background_work_and_each_gets_its_own_vector(
    encoder: Encoder,
) -> None:
    """Answers to store (one text each) wait behind the calls' sentences and are counted as
    background work; each waiter gets its own vector, and a text the model refuses fails alone."""
    fresh = uuid.uuid4().hex[:8]  # the shared encoder keeps what it has seen: new words only
    texts = [f"We open at 9 ({fresh}).", f"Parking is free ({fresh}).", f"Yes, we do ({fresh})."]
    before = encoder.load.background_sentences, encoder.load.call_sentences
    results = await asyncio.gather(
        encoder.embed_later(texts[0]),
        encoder.embed_later("a lone \ud800 surrogate"),
        encoder.embed_later(texts[1]),
        encoder.embed(f"Do you deliver ({fresh})?"),
        encoder.embed_later(texts[2]),
        return_exceptions=True,
    )
    first, bad, second, call, third = results
    assert isinstance(bad, Exception)
    expected = encoder.encode_sync(texts)
    for got, want in zip((first, second, third), expected, strict=True):
        assert isinstance(got, np.ndarray) and got.shape == (encoder.dimension,)
        assert np.allclose(got, want, atol=1e-5)
    assert isinstance(call, np.ndarray)
    assert encoder.load.call_sentences == before[1] + 1  # the call's sentence, counted as such
    assert encoder.load.background_sentences >= before[0] + 3
