"""The Gradio demo (``spaces/app.py`` and ``diffseg30k demo`` are thin shells over :func:`build_app`).

Upload an image or pick an example (samples of the embedded mini data, shown with their ground truth,
and an unedited photo) -> semantic overlay in the paper's palette with a legend, binary
overlay, a table of generators (edited area, mean confidence), the image-level verdict (1 % rule) and
a downloadable label-map PNG. The endpoint ``/predict`` serves ``gradio_client`` callers.

Checkpoint (first that is set): the ``checkpoint`` argument, ``$DIFFSEG_CHECKPOINT`` (Hub id or local
folder), a ``checkpoint/`` folder beside ``app.py`` (what ``diffseg30k push space --checkpoint DIR``
bundles). Without one the page still opens and says how to configure it.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffseg30k.checkpoint import CHECKPOINT_ENV
from diffseg30k.io import (
    MAX_PIXELS,
    ImageError,
    NormalizedImage,
    atomic_write_bytes,
    cache_dir,
    normalize_image,
)
from diffseg30k.labels import BINARY_ID2LABEL, GENERATOR_BY_NAME, ID2LABEL, label_colors
from diffseg30k.render import OVERLAY_ALPHA, label_map_image, legend_html, overlay

__all__ = ["CHECKPOINT_ENV", "OVERLAY_ALPHA", "DemoService", "Example", "build_app", "example_set",
           "launch_kwargs", "legend_html", "load_detector", "overlay", "resolve_checkpoint"]

LOG = logging.getLogger(__name__)
#: Pixel limit of the demo: 16 MP unless DIFFSEG30K_MAX_PIXELS says otherwise (probabilities cost
#: 4 bytes x classes x pixels, so this bounds a request's memory).
DEMO_MAX_PIXELS = MAX_PIXELS if "DIFFSEG30K_MAX_PIXELS" in os.environ else min(MAX_PIXELS, 4096 * 4096)
MAX_FILE_SIZE = os.environ.get("DIFFSEG_DEMO_MAX_FILE_SIZE", "50mb")
QUEUE_SIZE = int(os.environ.get("DIFFSEG_DEMO_QUEUE_SIZE", "16"))
CONCURRENCY = int(os.environ.get("DIFFSEG_DEMO_CONCURRENCY", "1"))
IMAGE_HEIGHT = 340
TABLE_HEADERS = ["generator", "model", "edited area (%)", "mean confidence"]


# ------------------------------------------------------------------------------------------ rendering
def generator_rows(generators: dict[str, dict[str, float]]) -> list[list[Any]]:
    """Table rows, largest edited area first."""
    rows = []
    for name, stats in sorted(generators.items(), key=lambda kv: -kv[1]["area"]):
        generator = GENERATOR_BY_NAME.get(name)
        rows.append([name, generator.display_name if generator else name, round(100 * stats["area"], 2),
                     round(stats["confidence"], 3)])
    return rows


def verdict_markdown(result, notes: list[str], threshold: float) -> str:
    """The image-level verdict (1 % rule) with the main generator and the input notes."""
    share = 100 * result.edited_fraction
    if result.is_edited:
        text = f"## Verdict: edited\n{share:.1f}% of the pixels look diffusion-edited"
        if result.generators and result.task == "semantic":
            name, stats = max(result.generators.items(), key=lambda kv: kv[1]["area"])
            generator = GENERATOR_BY_NAME.get(name)
            text += (f"; largest area: **{generator.display_name if generator else name}** "
                     f"({100 * stats['area']:.1f}%, mean confidence {stats['confidence']:.2f})")
    else:
        text = (f"## Verdict: no edit detected\n{share:.1f}% of the pixels flagged, below the "
                f"{100 * threshold:g}% threshold")
    text += "."
    if getattr(result, "integrity", None) is not None:  # detectors with a detection head (TruFor-style)
        text += f"\n\nImage integrity score (probability the image is edited): **{result.integrity:.3f}**."
    if notes:
        text += "\n\nInput: " + "; ".join(notes) + "."
    return text


class OutputStore:
    """Per-request folders of output PNGs, keeping only the newest ``keep`` (bounded disk). Writing the
    PNGs here (fast zlib level) spares gradio re-encoding the overlays at its slower default."""

    def __init__(self, folder: Path, keep: int = 64):
        self.folder, self.keep = folder, keep
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = 0

    def new_slot(self) -> Path:
        """A fresh folder for one request; the oldest beyond ``keep`` are removed."""
        with self._lock:
            self._count += 1
            slot = self.folder / f"{self._count:06d}"
            for old in sorted(self.folder.iterdir())[:-self.keep]:
                shutil.rmtree(old, ignore_errors=True)
            slot.mkdir()
        return slot

    @classmethod
    def temporary(cls, keep: int = 64) -> OutputStore:
        """A store in a new folder under ``GRADIO_TEMP_DIR`` (where gradio keeps its files; else the
        system temporary folder), removed when the process exits."""
        root = os.environ.get("GRADIO_TEMP_DIR")
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="diffseg30k-demo-", dir=root or None))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return cls(folder, keep)

    @staticmethod
    def save_png(image: Image.Image, path: Path) -> str:
        image.save(path, "PNG", compress_level=1)
        return str(path)


# ----------------------------------------------------------------------------------------- the model
def resolve_checkpoint(explicit: str | None = None, app_dir: str | os.PathLike | None = None) -> str | None:
    """The checkpoint to serve: ``explicit``, else ``$DIFFSEG_CHECKPOINT``, else ``app_dir/checkpoint``."""
    if explicit:
        return str(explicit)
    if os.environ.get(CHECKPOINT_ENV):
        return os.environ[CHECKPOINT_ENV]
    bundled = Path(app_dir) / "checkpoint" if app_dir else None
    return str(bundled) if bundled and (bundled / "config.json").is_file() else None


def load_detector(checkpoint: str, revision: str | None = None, runtime: str = "auto"):
    """``Detector.from_pretrained`` with one readable error for every way loading can fail; ``runtime``
    'auto' picks the fastest installed CPU runtime (torch when none is, or on a GPU)."""
    from diffseg30k.detector import Detector

    if runtime == "auto" and _has_gpu():
        runtime = "torch"
    try:
        return Detector.from_pretrained(checkpoint, revision=revision, runtime=runtime)
    except Exception as err:  # missing folder, offline Hub, bad config, bad weights
        raise RuntimeError(f"cannot load the detector {checkpoint!r}: {type(err).__name__}: {err}") from err


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def runtime_markdown(detector) -> str:
    """Which runtime serves the page, and why when it is not the one asked for."""
    text = f"Runtime: `{detector.runtime}`"
    return text + (f" ({detector.runtime_note})" if detector.runtime_note else "")


class TileProgress:
    """``progress(done, total)`` for :class:`Detector`: a per-tile bar with the estimated time left
    (from the previous image's seconds per tile until this image's first tiles are done)."""

    def __init__(self, bar, total: int, seconds_per_tile: float | None):
        self.bar, self.total, self.seconds_per_tile = bar, total, seconds_per_tile
        self.started = time.perf_counter()
        self.update(0, total)

    def update(self, done: int, total: int) -> None:
        if done:
            self.seconds_per_tile = (time.perf_counter() - self.started) / done
        left = f", about {self.seconds_per_tile * (total - done):.0f} s left" if self.seconds_per_tile else ""
        self.bar((done, total), desc=f"large image: tile {done}/{total}{left}", unit="tiles")


class DemoService:
    """The state behind the page: one detector, the mask store, and the ``predict`` function."""

    def __init__(self, detector=None, checkpoint: str | None = None, load_error: str | None = None):
        self.detector, self.checkpoint, self.load_error = detector, checkpoint, load_error
        self.outputs = OutputStore.temporary()
        self.seconds_per_tile: float | None = None

    @property
    def colors(self) -> dict[int, tuple[int, int, int]]:
        return label_colors(self.detector.id2label, self.detector.task)  # labels: the one resolver

    def analyse(self, upload: dict | str | None, progress=None):
        """The ``predict`` endpoint: (semantic overlay, binary overlay, generator table, verdict,
        mask PNG path, JSON details). Every failure becomes a readable ``gr.Error``; large images
        report per-tile ``progress`` (a ``gr.Progress``)."""
        import gradio as gr

        if self.detector is None:
            raise gr.Error(self.load_error or f"No detector configured: set {CHECKPOINT_ENV} to a Hub model "
                           "id or a checkpoint folder, or run `diffseg30k demo --checkpoint ...`.")
        if not upload:
            raise gr.Error("Upload an image first (or pick an example).")
        try:
            path, name = _upload_path(upload)
            normalized = normalize_image(path, name=name, max_pixels=DEMO_MAX_PIXELS)
        except ImageError as err:
            raise gr.Error(str(err)) from err
        try:
            return self._predict(normalized, name, progress)
        except Exception as err:  # surfaced as a message, logged with its traceback
            LOG.exception("prediction failed for %s", name)
            raise gr.Error(f"{name}: the detector failed ({type(err).__name__}: {err})") from err

    def _predict(self, normalized: NormalizedImage, name: str, progress=None):
        pixels = np.asarray(normalized.image)
        tiles = self.detector.tile_count(*pixels.shape[:2])
        tracker = TileProgress(progress, tiles, self.seconds_per_tile) if tiles and progress else None
        started = time.perf_counter()
        result = self.detector(pixels, progress=tracker.update if tracker else None)
        seconds = time.perf_counter() - started
        if tiles:
            self.seconds_per_tile = seconds / tiles
        label_map = result.label_map
        binary_colors = label_colors(BINARY_ID2LABEL, "binary")
        slot, stem = self.outputs.new_slot(), Path(name).stem or "image"
        semantic = self.outputs.save_png(Image.fromarray(overlay(pixels, label_map, self.colors)),
                                         slot / "semantic_overlay.png")
        edited = (label_map > 0).astype(np.uint8)
        binary = self.outputs.save_png(Image.fromarray(overlay(pixels, edited, binary_colors)),
                                       slot / "binary_overlay.png")
        mask_path = self.outputs.save_png(label_map_image(label_map, self.colors),
                                          slot / f"{stem}_diffseg30k_mask.png")
        checkpoint = getattr(self.detector, "checkpoint", None) or self.checkpoint
        details = {**result.to_dict(), "checkpoint": checkpoint, "input_notes": normalized.notes,
                   "runtime": self.detector.runtime, "tiles": tiles, "seconds": round(seconds, 3)}
        verdict = verdict_markdown(result, normalized.notes, self.detector.area_threshold)
        if tiles:
            verdict += (f"\n\nLarge image: processed at native resolution in {tiles} overlapping tiles of "
                        f"{self.detector.tile_size} px ({seconds:.1f} s, runtime {self.detector.runtime}).")
        return semantic, binary, generator_rows(result.generators), verdict, mask_path, details


def _upload_path(upload: dict | str) -> tuple[str, str]:
    """(local path, user-facing file name) of an upload payload (``preprocess=False``) or a path."""
    if isinstance(upload, dict):
        path = upload.get("path")
        if not path:
            raise ImageError("the upload carried no file")
        return path, Path(upload.get("orig_name") or path).name
    return str(upload), Path(upload).name


# ------------------------------------------------------------------------------------------ the page
#: The mini release the examples come from (built once by the generation pipeline, then cached).
EXAMPLE_RELEASE = {"num": 4, "seed": 0}


@dataclass(frozen=True)
class Example:
    """A demo example: the image, its ground truth rendered like the overlay (None: not known) and
    what it is."""

    image: str
    truth: str | None
    label: str


def example_set(folder: Path | None = None) -> list[Example]:
    """The examples: samples of the embedded mini data (tiny diffusion editors of the generation
    pipeline, ground truth known) -- a multi-generator edit and a single edit -- and an unedited
    scikit-image photo. Files are written once into ``folder`` (default: the cache)."""
    folder = folder or cache_dir("demo_examples")
    examples = []
    try:
        examples += _mini_examples(folder)
    except ImportError as err:  # the mini data needs the `generate` extra (diffusers)
        LOG.warning("demo examples: no mini-data samples (%s); install diffseg30k[generate]", err)
    try:
        from skimage import data as skdata

        photo = folder / "unedited-astronaut.jpg"
        if not photo.exists():
            _write_image(Image.fromarray(skdata.astronaut()).resize((256, 256), Image.BICUBIC), photo, "JPEG")
        examples.append(Example(str(photo), None, "an unedited photo (scikit-image's astronaut): no edit"))
    except ImportError:
        pass
    return examples


def _mini_examples(folder: Path) -> list[Example]:
    """Two samples of the mini release: a multi-generator edit first, then one on the other kind of
    base (real photo / AI image) when there is one."""
    from diffseg30k.generation.mini import build_mini_release, read_metadata

    root = build_mini_release(**EXAMPLE_RELEASE)
    rows = [r for r in read_metadata(root) if r["models"]]
    if not rows:
        return []
    first = next((r for r in rows if len(r["models"]) >= 2), rows[0])
    others = [r for r in rows if r is not first]
    second = next((r for r in others if r["base"] != first["base"]), others[0] if others else None)
    colors = label_colors(ID2LABEL)
    examples = []
    for row in (first, second) if second else (first,):
        image_path, truth_path = folder / f"mini-{row['id']}.png", folder / f"mini-{row['id']}.truth.png"
        if not truth_path.exists():
            pixels = np.asarray(Image.open(root / f"{row['id']}.image.png").convert("RGB"))
            mask = np.asarray(Image.open(root / f"{row['id']}.mask.png"))
            _write_image(Image.fromarray(pixels), image_path, "PNG")
            _write_image(Image.fromarray(overlay(pixels, mask, colors)), truth_path, "PNG")
        base = "a real photo" if row["base"] == "real" else "an AI image"
        examples.append(Example(str(image_path), str(truth_path),
                                f"mini data: {' + '.join(row['models'])} edits on {base}"))
    return examples


def _write_image(image: Image.Image, path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    atomic_write_bytes(path, buffer.getvalue())


CSS = """
.ds-legend {display:flex; flex-wrap:wrap; gap:6px 14px; font-size:0.9em}
.ds-legend-item {display:inline-flex; align-items:center; gap:5px}
.ds-swatch {width:14px; height:14px; border-radius:3px; border:1px solid #0003; display:inline-block}
"""


def build_app(checkpoint: str | None = None, revision: str | None = None, detector=None,
              app_dir: str | os.PathLike | None = None, runtime: str = "auto"):
    """The ``gr.Blocks`` page (queued: ``CONCURRENCY`` workers, at most ``QUEUE_SIZE`` waiting);
    ``runtime`` as in :func:`load_detector` when the page loads the detector itself."""
    import gradio as gr

    checkpoint = resolve_checkpoint(checkpoint, app_dir)
    error = None
    if detector is None and checkpoint:
        try:
            detector = load_detector(checkpoint, revision, runtime)
        except RuntimeError as err:
            error = str(err)
    service = DemoService(detector, checkpoint, error)
    examples = example_set(cache_dir("demo_examples"))
    with gr.Blocks(title="DiffSeg30k: where was this image edited, and by which diffusion model?",
                   delete_cache=(900, 3600)) as app:
        gr.Markdown("# DiffSeg30k detector\nLocalize diffusion edits and attribute them to one of eight "
                    "generators ([dataset](https://huggingface.co/datasets/Chaos2629/Diffseg30k)).")
        if detector is None:
            hint = error or f"Set {CHECKPOINT_ENV} to a Hub model id or a checkpoint folder."
            gr.Markdown(f"**No detector loaded.** {hint}")
        else:
            shown = getattr(detector, "loaded_from", None) or checkpoint or "in-memory"
            gr.Markdown(f"Detector: `{shown}` (task: {detector.task}). {runtime_markdown(detector)}",
                        elem_id="runtime")
        truth = gr.Image(label="Ground truth (mini-data examples)", type="filepath", elem_id="ground-truth",
                         interactive=False, height=IMAGE_HEIGHT, render=False)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.Image(type="filepath", label="Image", sources=["upload", "clipboard"],
                                  elem_id="input-image", height=IMAGE_HEIGHT)
                run = gr.Button("Detect edits", variant="primary", elem_id="detect")
                gr.Examples([[e.image, e.truth] for e in examples], inputs=[upload, truth], label="Examples",
                            example_labels=[e.label for e in examples], elem_id="examples")
                upload.upload(lambda: None, outputs=truth)  # an upload of one's own has no ground truth
                verdict = gr.Markdown(label="Verdict", elem_id="verdict")
            with gr.Column(scale=2):
                with gr.Row():
                    semantic = gr.Image(label="Generator attribution (semantic overlay)", type="filepath",
                                        elem_id="semantic-overlay", interactive=False, height=IMAGE_HEIGHT)
                    truth.render()  # beside the prediction
                    binary = gr.Image(label="Edited pixels (binary overlay)", type="filepath",
                                      elem_id="binary-overlay", interactive=False, height=IMAGE_HEIGHT)
                if detector is not None:
                    gr.HTML(legend_html(detector.id2label, service.colors), elem_id="legend")
                table = gr.Dataframe(headers=TABLE_HEADERS, label="Generators found", interactive=False)
                mask = gr.File(label="Label map (PNG, pixel value = label id)", elem_id="mask-file")
                with gr.Accordion("Details (JSON)", open=False):
                    details = gr.JSON(label="Details")
        run.click(_with_progress(service), inputs=upload,
                  outputs=[semantic, binary, table, verdict, mask, details], api_name="predict",
                  preprocess=False, concurrency_limit=CONCURRENCY)
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    app.diffseg_service = service
    return app


def _with_progress(service: DemoService):
    """``service.analyse`` with the ``gr.Progress`` that gradio injects into a keyword default."""
    import gradio as gr

    def predict(upload, progress=gr.Progress()):  # noqa: B008  (gradio's injection idiom)
        return service.analyse(upload, progress)
    return predict


def launch_kwargs(host: str | None = None, port: int | None = None) -> dict[str, Any]:
    """``launch()`` arguments: host/port default to GRADIO_SERVER_NAME/GRADIO_SERVER_PORT (gradio's own
    defaults otherwise), bounded upload size, the examples folder allowed, the legend CSS."""
    return {"server_name": host, "server_port": port, "max_file_size": MAX_FILE_SIZE, "show_error": True,
            "allowed_paths": [str(cache_dir("demo_examples"))], "css": CSS}
