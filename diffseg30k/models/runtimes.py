"""Exported CPU runtimes for detectors: ONNX Runtime (fp32, int8) and OpenVINO (fp32).

Exporter: ``torch.onnx.export`` (its TorchScript-based path, ``dynamo=False``) with dynamic batch,
height and width, then OpenVINO's own ``openvino.convert_model`` on that ONNX file. Hugging Face
``optimum`` is not used: optimum-onnx pins transformers < 4.58 and optimum-intel transformers < 5.6
(and another torch), while this toolkit runs transformers 5.x; installing either would downgrade
them. The dynamo exporter was tried: it specialises a batch of one, and takes ~20 s for a tiny
model (~1 s here). int8 is ONNX Runtime's dynamic quantization of the MatMul weights
(``onnxruntime.quantization.quantize_dynamic``); quantizing the convolutions too lost > 2 % of the
labels, so they stay fp32. An int8 export is checked against fp32 on synthetic images before use.

The exported graph is the inference model (SegFormer with its fused decode head) up to the logits
and, for models that give them (TruFor-style), the ``confidence`` and ``integrity`` outputs; padding,
bilinear upsampling, softmax and tiling stay in :mod:`diffseg30k.models.inference`, shared with the
torch runtime. Exports are cached, keyed by the weights' sha256, next to the checkpoint
(``.diffseg30k-runtimes/``) or, for read-only folders and Hub downloads, in the diffseg30k cache;
each is built in a temporary folder and moved into place when complete.

Every fp32 export is checked against torch at a size other than the traced example's (a graph that
froze a shape, or a model whose control flow depends on the input size, would otherwise run silently
wrong). A runtime that is not installed, an export that fails or one that does not reproduce torch
is reported once and the detector keeps torch (:func:`prepare_runtime` never raises for those).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffseg30k.io import atomic_dir, atomic_write_text, cache_dir
from diffseg30k.models.common import EXTRA_OUTPUTS, ForensicSegmenterOutput

LOG = logging.getLogger(__name__)
RUNTIMES = ("torch", "onnx", "onnx-int8", "openvino")
#: What ``runtime="auto"`` tries, fastest first on 2-core CPUs (tests/benchmarks/bench_detector_cpu.py).
AUTO_ORDER = ("onnx-int8", "onnx", "openvino")
EXPORT_VERSION = 2  # bump when the exported graph changes, so stale caches are not reused
OPSET = 17
INT8_MIN_AGREEMENT = 0.99
#: The size an fp32 export is checked at against torch (not the 64x64 it is traced at), and the tolerance.
CHECK_SIZE, CHECK_TOLERANCE = (96, 160), 1e-3
CACHE_FOLDER = ".diffseg30k-runtimes"


class RuntimeUnavailable(RuntimeError):
    """The runtime is not installed, or the model cannot be exported to it."""


def output_names(model: torch.nn.Module, example: torch.Tensor) -> list[str]:
    """``logits`` and the :data:`~diffseg30k.models.common.EXTRA_OUTPUTS` that ``model`` gives."""
    with torch.no_grad():
        output = model(pixel_values=example)
    return ["logits", *[name for name in EXTRA_OUTPUTS if getattr(output, name, None) is not None]]


class GraphOutputs(torch.nn.Module):
    """``pixel_values -> (logits, *extra outputs)`` of a detector: the graph the exporters trace."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(pixel_values=pixel_values)
        return tuple(getattr(output, name) for name in self.names)


@dataclass
class ExportedModel:
    """Callable like a detector (``model(pixel_values=...).logits``, plus ``confidence`` / ``integrity``
    when the export has them) but run by ONNX Runtime or OpenVINO; ``config`` is the checkpoint's."""

    run: object
    config: object
    runtime: str
    folder: Path

    def __call__(self, pixel_values: torch.Tensor, **kwargs) -> ForensicSegmenterOutput:
        array = np.ascontiguousarray(pixel_values.detach().float().cpu().numpy())
        outputs = self.run(array)
        return ForensicSegmenterOutput(**{name: torch.from_numpy(np.asarray(value))
                                          for name, value in outputs.items()})

    def eval(self) -> ExportedModel:
        return self


def weights_sha256(folder: Path | None, model: torch.nn.Module) -> str:
    """sha256 of the checkpoint's safetensors files (sorted), else of the in-memory state dict."""
    digest = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors")) if folder else []
    if files:
        for path in files:
            with open(path, "rb") as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
        return digest.hexdigest()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_root(folder: Path | None, sha: str) -> Path:
    """Where the exports of weights ``sha`` live: beside a writable local checkpoint, else the cache."""
    if folder is not None and _writable_checkpoint(Path(folder)):
        return Path(folder) / CACHE_FOLDER / f"{sha[:16]}-v{EXPORT_VERSION}"
    return cache_dir("runtimes") / f"{sha[:16]}-v{EXPORT_VERSION}"


def _writable_checkpoint(folder: Path) -> bool:
    from huggingface_hub import constants

    if folder.resolve().is_relative_to(Path(constants.HF_HUB_CACHE).resolve()):
        return False  # a Hub snapshot: never write into the shared Hub cache
    return os.access(folder, os.W_OK | os.X_OK)


def export_onnx(model: torch.nn.Module, root: Path, int8: bool = False) -> Path:
    """The cached ``model.onnx`` (or ``model-int8.onnx``) of ``model`` under ``root``, exported once."""
    name = "model-int8.onnx" if int8 else "model.onnx"
    target = root / name.removesuffix(".onnx")
    if (target / name).is_file():
        return target / name
    if int8:
        source = export_onnx(model, root)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with atomic_dir(target, overwrite=True) as tmp:
            quantize_dynamic(source, tmp / name, op_types_to_quantize=["MatMul"],
                             weight_type=QuantType.QInt8)
        return target / name
    example = torch.zeros(2, 3, 64, 64, dtype=next(model.parameters()).dtype)
    names = output_names(model, example)
    axes = {"logits": {0: "batch", 2: "logit_height", 3: "logit_width"},
            "confidence": {0: "batch", 2: "logit_height", 3: "logit_width"}, "integrity": {0: "batch"}}
    with atomic_dir(target, overwrite=True) as tmp, torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based path is chosen on purpose (module docstring): silence its deprecation
        # notice and the tracer's notes on shape arithmetic (dynamic axes cover them; tests check sizes)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(GraphOutputs(model, names).eval(), (example,), str(tmp / name), dynamo=False,
                          input_names=["pixel_values"], output_names=names, opset_version=OPSET,
                          dynamic_axes={"pixel_values": {0: "batch", 2: "height", 3: "width"},
                                        **{n: axes[n] for n in names}})
    return target / name


def export_openvino(model: torch.nn.Module, root: Path) -> Path:
    """The cached OpenVINO IR (``model.xml`` + ``.bin``, fp32 weights) converted from the ONNX export."""
    import openvino as ov

    target = root / "openvino"
    if (target / "model.xml").is_file():
        return target / "model.xml"
    onnx_path = export_onnx(model, root)
    with atomic_dir(target, overwrite=True) as tmp:
        ov.save_model(ov.convert_model(str(onnx_path)), str(tmp / "model.xml"), compress_to_fp16=False)
    return target / "model.xml"


def onnxruntime_runner(path: Path, threads: int):
    """A ``numpy -> {output name: numpy}`` function running ``path`` on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return lambda pixels: dict(zip(names, session.run(names, {"pixel_values": pixels})))


def openvino_runner(path: Path, threads: int):
    """A ``numpy -> {output name: numpy}`` function running the IR at ``path`` on OpenVINO's CPU
    plugin (fp32)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": "f32"})
    local = threading.local()  # an infer request is not thread-safe: one per demo worker thread

    def run(pixels: np.ndarray) -> np.ndarray:
        if not hasattr(local, "request"):
            local.request = compiled.create_infer_request()
        results = local.request.infer({0: pixels}, share_inputs=True)
        return {port.get_any_name(): results[port].copy() for port in compiled.outputs}
    return run


def _int8_agreement(model: torch.nn.Module, fp32_run, int8_run) -> float:
    """Share of identical argmax labels, int8 vs fp32, on synthetic images (with edits) of odd sizes."""
    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.models.common import IMAGENET_MEAN, IMAGENET_STD

    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    same = total = 0
    for seed, size in ((1, (224, 160)), (2, (192, 256))):
        image = np.asarray(synthetic_pair(seed, size)[0].convert("RGB"), np.float32) / 255.0
        pixels = np.ascontiguousarray(((image - mean) / std).transpose(2, 0, 1)[None])
        labels_fp32, labels_int8 = fp32_run(pixels)["logits"].argmax(1), int8_run(pixels)["logits"].argmax(1)
        same += int((labels_fp32 == labels_int8).sum())
        total += labels_fp32.size
    return same / total


def check_export(model: torch.nn.Module, run) -> None:
    """Raise :class:`RuntimeUnavailable` unless ``run`` reproduces ``model`` (every output) on a
    random batch of :data:`CHECK_SIZE`, a size other than the one the export was traced at."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(1, 3, *CHECK_SIZE, generator=generator).to(next(model.parameters()).dtype)
    with torch.no_grad():
        want = model(pixel_values=pixels)
    try:
        got = run(np.ascontiguousarray(pixels.float().numpy()))
    except Exception as err:  # the runtime itself fails at another size: an input-size-dependent graph
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise RuntimeUnavailable(f"the export fails at {CHECK_SIZE[0]}x{CHECK_SIZE[1]} ({first}); this "
                                 "model's graph depends on the input size") from None
    for name, value in got.items():
        expected = getattr(want, name).float().numpy()
        if value.shape != expected.shape or not np.allclose(value, expected, atol=CHECK_TOLERANCE,
                                                            rtol=CHECK_TOLERANCE):
            raise RuntimeUnavailable(f"the export does not reproduce torch ({name} at {CHECK_SIZE[0]}x"
                                     f"{CHECK_SIZE[1]}: shape {value.shape} vs {expected.shape}); this "
                                     "model's graph depends on the input size")


def _build(runtime: str, model: torch.nn.Module, root: Path, threads: int):
    if runtime == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError as err:
            raise RuntimeUnavailable("OpenVINO is not installed (pip install 'diffseg30k[runtime]')") from err
        run = openvino_runner(export_openvino(model, root), threads)
        check_export(model, run)
        return run
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise RuntimeUnavailable("ONNX Runtime is not installed (pip install 'diffseg30k[runtime]')") from err
    fp32 = onnxruntime_runner(export_onnx(model, root), threads)
    check_export(model, fp32)
    if runtime == "onnx":
        return fp32
    int8 = onnxruntime_runner(export_onnx(model, root, int8=True), threads)
    check = root / "model-int8" / "agreement.json"
    if not check.is_file():
        agreement = _int8_agreement(model, fp32, int8)
        atomic_write_text(check, json.dumps({"label_agreement_vs_fp32": agreement}))
    agreement = json.loads(check.read_text())["label_agreement_vs_fp32"]
    if agreement < INT8_MIN_AGREEMENT:
        raise RuntimeUnavailable(f"int8 changes {100 * (1 - agreement):.1f}% of the labels of this model")
    return int8


def prepare_runtime(model: torch.nn.Module, runtime: str, folder: Path | None = None,
                    device: torch.device | None = None
                    ) -> tuple[torch.nn.Module | ExportedModel, str, str | None]:
    """(model to call, runtime in use, note): the exported ``runtime`` of the inference ``model``, or
    ``model`` itself with a note saying why it stays on torch (logged once). ``"auto"`` tries
    :data:`AUTO_ORDER`. Unknown names raise ``ValueError``."""
    if runtime not in (*RUNTIMES, "auto"):
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join((*RUNTIMES, 'auto'))}")
    if runtime == "torch":
        return model, "torch", None
    if device is not None and torch.device(device).type != "cpu":
        note = f"runtime {runtime!r} runs on CPU only; staying on torch ({device})"
        LOG.warning(note)
        return model, "torch", note
    root = export_root(folder, weights_sha256(folder, model))
    threads = torch.get_num_threads()
    failures = []
    for candidate in (AUTO_ORDER if runtime == "auto" else (runtime,)):
        try:
            run = _build(candidate, model, root, threads)
        except Exception as err:  # not installed, unsupported operator, failed export: torch instead
            failures.append(f"{candidate}: {type(err).__name__}: {err}")
            continue
        skipped = f"skipped {'; '.join(failures)}" if failures else None  # auto: say what was passed over
        return ExportedModel(run, model.config, candidate, root), candidate, skipped
    note = f"runtime {runtime!r} unavailable, using torch ({'; '.join(failures)})"
    LOG.warning(note)
    return model, "torch", note
