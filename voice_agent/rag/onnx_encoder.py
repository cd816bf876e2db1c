"""The sentence encoder's transformer run by ONNX Runtime instead of PyTorch.

The same float32 weights, exported once per set of weights to an ONNX graph cached on disk, give
the same vectors (within 1e-6) with far less work per call: one caller sentence on one
thread in 7.5 ms against 14.3 ms in PyTorch at p50 (`bench/encoder_speed.py`, 2026-12-02, 2
cores). ONNX Runtime picks its CPU kernels when it runs, so one exported file serves every
machine.

Only the usual sentence-transformers pipeline is supported, a transformer, then mean or CLS
pooling, then optionally normalisation; anything else raises `OnnxUnsupported` and the encoder
stays with PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Forward = Callable[[Sequence[str]], Vectors]

log = logging.getLogger(__name__)

# Part of the cached file's name: a change to how the graph is exported makes a new file.
EXPORT_FORMAT = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxUnsupported(Exception):
    """This model, or this installation, cannot run on ONNX Runtime; the reason says which."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voice-agent" / "encoders"


def onnx_forward(
    model: Any, cache_dir: Path, threads: int, int8: bool = False
) -> tuple[Forward, Path]:
    """A function from texts to normalised float32 vectors for the sentence-transformers
    `model`, and the ONNX file it runs (exported into `cache_dir` on first use; with `int8`,
    that export's weights quantized to 8 bits, made once from it)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise OnnxUnsupported(f"onnxruntime is not installed ({exc})") from exc
    transformer, pooling = _pipeline(model)
    path = _exported(transformer, cache_dir)
    if int8:
        path = _quantized(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A worker that spins after its work takes a core the model process needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    tokenizer = transformer.tokenizer
    max_length = int(transformer.max_seq_length)

    def forward(texts: Sequence[str]) -> Vectors:
        encoded = tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in wanted}
        hidden = session.run(None, feeds)[0]
        if pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.asarray(vectors / norms, dtype=np.float32)

    return forward, path


def _pipeline(model: Any) -> tuple[Any, str]:
    """The transformer module and the pooling mode, or why this model is not supported."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise OnnxUnsupported(f"modules {kinds}: only Transformer, Pooling[, Normalize]")
    mode = str(modules[1].get_config_dict().get("pooling_mode"))
    if mode not in ("mean", "cls"):
        raise OnnxUnsupported(f"pooling {mode!r}: only mean and cls")
    return modules[0], mode


def _exported(transformer: Any, cache_dir: Path) -> Path:
    source = Path(str(transformer.auto_model.name_or_path))
    import torch

    # Named by the weights as they are in memory, not by the files they were read from: an
    # adapter merged at load (adapter.py) makes other weights from the same files.
    digest = hashlib.sha256(f"{EXPORT_FORMAT} {OPSET} {torch.__version__}".encode())
    digest.update(transformer.auto_model.config.to_json_string().encode())
    for name, tensor in transformer.auto_model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    path = cache_dir / f"{source.name}-{digest.hexdigest()[:16]}.onnx"
    if path.is_file():
        return path
    partial = path.with_suffix(f".{os.getpid()}.partial")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _export(transformer, partial)
        os.replace(partial, path)  # atomic: pods starting together never read half a file
    except OSError as exc:  # a read-only image, a full disk: the encoder stays on PyTorch
        raise OnnxUnsupported(f"cannot write the export to {cache_dir}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):  # never made, or its folder cannot be reached
            partial.unlink()
    log.info("encoder: exported %s to %s", source.name, path)
    return path


def _quantized(path: Path) -> Path:
    """The export with its weights in int8 (dynamic quantization: activations quantized per
    batch at run time), per output channel. The same float32 file always gives the same int8
    file, so every start serves the same vectors."""
    target = path.with_name(f"{path.stem}-int8.onnx")
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.partial")
    try:
        quantize_dynamic(path, partial, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(partial, target)
    except OSError as exc:
        raise OnnxUnsupported(f"cannot write the int8 model to {target.parent}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    log.info("encoder: quantized %s to %s", path.name, target)
    return target


def _export(transformer: Any, path: Path) -> None:
    import torch

    class Hidden(torch.nn.Module):
        """The transformer's last hidden state from positional inputs, as ONNX wants them."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(INPUTS, inputs, strict=True))).last_hidden_state

    encoded = transformer.tokenizer(["a sentence to trace"], return_tensors="pt")
    names = [n for n in INPUTS if n in encoded]
    if names != list(INPUTS[: len(names)]):
        raise OnnxUnsupported(f"tokenizer inputs {names}: expected a prefix of {INPUTS}")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as exc:
        raise OnnxUnsupported(f"onnx is not installed ({exc})") from exc
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes, not ours to act on
        try:
            torch.onnx.export(
                # A copy: tracing leaves marks on the module that change what PyTorch computes.
                Hidden(copy.deepcopy(transformer.auto_model).eval()),
                tuple(encoded[n] for n in names),
                str(path),
                input_names=names,
                output_names=["hidden"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        except OSError:
            raise  # the folder, not the model: said as such by the caller
        except Exception as exc:  # an architecture the tracer cannot follow
            raise OnnxUnsupported(f"torch.onnx could not export the model: {exc}") from exc
