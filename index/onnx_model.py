"""The embedding model's forward pass run by ONNX Runtime, for questions: the vectors sentence-transformers gives
(within 1e-6), in a fraction of PyTorch's fixed per-call cost.

A question is a dozen tokens: PyTorch spends most of its time there on dispatching some hundred small operators, ONNX
Runtime on the arithmetic. The graph is exported from the model already loaded (its own weights, nothing fetched)
once per model and library version, and kept in a cache folder; an export another process is writing is never read
half-done (written aside, then renamed). The export traces the model's plain ("eager") attention, which ONNX Runtime's
transformer optimizer fuses into single Attention, LayerNorm and Gelu kernels (about 13 % less time a question); the
fused graph is kept only when it gives the plain graph's vectors. With ``query_precision`` int8 questions run a copy
whose matrix products have int8 weights (about 1.5x faster), made once from the export and used only when its
vectors stay within :data:`INT8_MIN_COSINE` of it. Only the shape of the bundled model is exported: a
BERT-like transformer, mean pooling, L2 normalisation. For any other, :func:`onnx_encoder` gives ``None`` and
PyTorch runs everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import EmbeddingModelError
from index.settings import QueryPrecision

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

#: Bump when the exported graph changes, so old exports in a cache are not reused.
GRAPH_VERSION = 2
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
#: The fused graph's vectors may differ from the plain graph's by this much at most (float32 rounding), else the
#: plain graph is kept.
FUSED_TOLERANCE = 1e-5
#: An int8 graph is used only when each of its vectors of :data:`CHECK_TEXTS` keeps at least this cosine with the
#: float32 graph's (the bundled model: about 0.99 for a question, 0.978 for an empty text), else questions run in
#: float32.
INT8_MIN_COSINE = 0.97
CHECK_TEXTS = (
    "an example question",
    "A longer sentence, with punctuation; and more words than the first one.",
    "What did the author work on before college, and why did he leave it?",
    "Which countries report signs that the group is rebuilding its networks?",
)


def _shape_supported(model: SentenceTransformer) -> bool:
    names = [type(module).__name__ for module in model]
    return names == ["Transformer", "Pooling", "Normalize"] and getattr(model[1], "pooling_mode", None) == "mean"


def _cache_key(model: SentenceTransformer, name: str) -> str:
    """Model name, a hash of the start of each of its weight tensors, and the versions that shape the graph."""
    import onnxruntime
    import torch
    import transformers

    digest = hashlib.blake2b(digest_size=8)
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().flatten()[:1024].float().numpy().tobytes())  # tells weights apart, cheaply
    digest.update(f"{GRAPH_VERSION}-{torch.__version__}-{transformers.__version__}-{onnxruntime.__version__}".encode())
    return f"{name.replace('/', '--')}-{digest.hexdigest()}"


def _export(model: SentenceTransformer, path: Path) -> None:
    """Transformer + mean pooling + normalisation as one ONNX graph at ``path`` (written aside, then renamed),
    with its attention and normalisation fused where that leaves the vectors as they are."""
    sample = {key: value for key, value in model.preprocess(["an example question"]).items() if key in INPUTS}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".onnx")
    os.close(fd)
    try:
        _trace(model, sample, staging)
        _fuse(model, staging)
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def _trace(model: SentenceTransformer, sample: dict[str, Any], target: str) -> None:
    import torch

    transformer = model[0].auto_model
    attention = transformer.config._attn_implementation

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    # Eager attention traces to the MatMul/Softmax pattern ONNX Runtime's optimizer fuses; the loaded model goes
    # back to its own attention (PyTorch's fused kernel) for indexing. A model without it is traced as it is.
    with contextlib.suppress(ValueError, NotImplementedError):
        transformer.set_attn_implementation("eager")
    try:
        # The tracer warns about Python branches it fixes to the sample's path; none depends on the input's size.
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Graph().eval(),
                tuple(sample[key] for key in INPUTS),
                target,
                input_names=list(INPUTS),
                output_names=["sentence_embedding"],
                dynamic_axes={key: {0: "batch", 1: "tokens"} for key in INPUTS},
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        transformer.set_attn_implementation(attention)


def _fuse(model: SentenceTransformer, graph: str) -> None:
    """Rewrite ``graph`` with ONNX Runtime's transformer fusions when the fused graph gives the same vectors."""
    import onnxruntime
    from onnxruntime.transformers.optimizer import optimize_model

    config = model[0].auto_model.config
    feed = _feed(model, list(CHECK_TEXTS[:2]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimize_model(graph, "bert", config.num_attention_heads, config.hidden_size, opt_level=1)
        fused_bytes = fused.model.SerializeToString()
        plain = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        again = onnxruntime.InferenceSession(fused_bytes, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        difference = float(np.abs(plain - again).max())
    except Exception as exc:  # the optimizer's own failures (unknown patterns, onnx checks) share no base class
        log.warning("ONNX Runtime's transformer optimizer failed (%s); keeping the plain export", exc)
        return
    if difference <= FUSED_TOLERANCE:
        Path(graph).write_bytes(fused_bytes)
    else:
        log.warning("the fused graph moves the vectors by %.1e; keeping the plain export", difference)


def _feed(model: SentenceTransformer, texts: list[str]) -> dict[str, np.ndarray]:
    return {key: value.numpy().astype(np.int64) for key, value in model.preprocess(texts).items() if key in INPUTS}


def _quantize(model: SentenceTransformer, graph: Path, target: Path) -> bool:
    """Write ``graph`` with int8 weights in its matrix products (dynamic quantization, one scale per output
    channel) to ``target``, if its vectors stay within :data:`INT8_MIN_COSINE`; False (nothing written) if not."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, staging = tempfile.mkstemp(dir=target.parent, prefix=".quantize-", suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                graph,
                staging,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],  # the fused Attention kernels stay float32
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # the fused kernels' outputs
            )
        feed = _feed(model, list(CHECK_TEXTS))
        exact, quantized = (
            onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feed)[0]
            for path in (str(graph), staging)
        )
        cosine = float((exact * quantized).sum(axis=1).min())  # both unit length
        if cosine < INT8_MIN_COSINE:
            log.warning("the int8 graph moves a vector to cosine %.3f; questions run in float32", cosine)
            return False
        os.replace(staging, target)
        return True
    finally:
        Path(staging).unlink(missing_ok=True)


def onnx_encoder(
    model: SentenceTransformer, name: str, cache: Path, precision: QueryPrecision = "float32"
) -> tuple[Callable[[list[str]], np.ndarray], QueryPrecision] | None:
    """texts → unit float32 vectors through ONNX Runtime, for a model of the supported shape (else ``None``), with
    the precision it runs in: ``int8`` asks for the quantized graph (made once beside the export), which is kept to
    float32 when it moves the vectors too far.

    Raises :class:`EmbeddingModelError` when onnxruntime is missing or the export cannot be written or read."""
    if not _shape_supported(model) or sorted(_inputs(model)) != sorted(INPUTS):
        return None
    try:
        import onnxruntime
    except ImportError as exc:
        raise EmbeddingModelError(
            "onnxruntime is missing: pip install onnxruntime onnx (make install does it), "
            "or set DOCBOT_QUERY_ENGINE=torch"
        ) from exc
    key = _cache_key(model, name)
    path, int8 = cache / f"{key}.onnx", cache / f"{key}-int8.onnx"
    chosen = path
    try:
        if not path.is_file():
            log.info("exporting the embedding model to ONNX at %s (once)", path)
            _export(model, path)
        if precision == "int8":
            chosen = int8
            if not int8.is_file():
                log.info("quantizing the question model to int8 at %s (once)", int8)
                chosen = int8 if _quantize(model, path, int8) else path
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        # Threads that wait for work sleep instead of spinning: on a loaded server, spinning takes the cores the
        # other requests need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(chosen), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's load errors (InvalidProtobuf, Fail, ...) share no base class but this
        raise EmbeddingModelError(
            f"cannot export or load the ONNX embedding model at {chosen} ({exc}); delete it, "
            "or set DOCBOT_QUERY_ENGINE=torch"
        ) from exc

    def encode(texts: list[str]) -> np.ndarray:
        (vectors,) = session.run(None, _feed(model, texts))  # every input there: checked above
        return np.asarray(vectors, dtype=np.float32)

    return encode, "int8" if chosen == int8 else "float32"


def _inputs(model: SentenceTransformer) -> list[str]:
    return [key for key, value in model.preprocess(["x"]).items() if hasattr(value, "numpy")]
