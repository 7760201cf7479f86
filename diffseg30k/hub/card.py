"""Model cards for DiffSeg30k checkpoints (huggingface_hub ``ModelCard``/``ModelCardData``/``EvalResult``).

The card's ``model-index`` comes from the checkpoint's last evaluation report (``diffseg30k.json`` →
``eval``, written by ``diffseg30k train``); the body has the label table, the palette and a usage snippet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diffseg30k.labels import DISPLAY_NAMES, GENERATOR_BY_NAME, label_colors, load_label_set
from diffseg30k.render import palette_json

DATASET_ID = "Chaos2629/Diffseg30k"
DEFAULT_LICENSE = "apache-2.0"
DETECTOR_FILE = "diffseg30k.json"
BASE_TAGS = ["diffseg30k", "aigc-detection", "image-forensics", "semantic-segmentation",
             "diffusion-edit-localization"]
#: metric key suffix -> (model-index metric type, readable name)
_METRIC_KINDS = {"accuracy": ("accuracy", "accuracy"), "miou": ("mean_iou", "mIoU"),
                 "bf1": ("boundary_f1", "boundary F1"), "ap": ("average_precision", "AP")}
#: metric key prefix -> (task type, task name); model-index groups results by task type and dataset, so the
#: semantic and binary scores share one segmentation entry and their metric names tell them apart.
_SEGMENTATION = ("image-segmentation", "Localized AI-edit detection and generator attribution")
_TASKS = {"semantic": _SEGMENTATION, "binary": _SEGMENTATION,
          "image": ("image-classification", "Whole-image edit detection (1% area rule)")}


class HubError(RuntimeError):
    """A push that cannot go ahead (offline, no token, bad folder); the message says why and what to do."""


def read_checkpoint_info(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """``diffseg30k.json`` of a checkpoint folder ({} when absent), with ``config.json`` facts added."""
    folder = Path(checkpoint)
    info: dict[str, Any] = {}
    for name in (DETECTOR_FILE, "config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise HubError(f"{path}: not valid JSON ({err})") from err
        if name == "config.json":
            info.setdefault("task", data.get("diffseg_task", "semantic"))
            info.setdefault("model", data.get("diffseg_model") or data.get("model_type"))
            info.setdefault("id2label", data.get("id2label"))
            info["model_type"] = data.get("model_type")
        else:
            info.update(data)
    return info


def last_evaluation(info: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of the checkpoint's last evaluation report ({} when it has none)."""
    report = info.get("eval") or info.get("evaluation")
    history = info.get("evaluations")
    if not report and isinstance(history, list) and history:
        report = history[-1]
    if not isinstance(report, dict):
        return {}
    return {k: float(v) for k, v in report.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "step"}


def evaluated_on(info: dict[str, Any]) -> tuple[str, str, bool]:
    """(dataset, split, is_hub_id) of the checkpoint's evaluation: the training run's ``dataset`` when it
    is a Hub id, else the local folder's name (the card then says it was a local folder); ("", split,
    False) when the checkpoint does not record its data."""
    training = info.get("training") or {}
    source = str(training.get("dataset") or "")
    split = str(training.get("eval_split") or "validation")
    if not source:
        return "", split, False
    is_hub_id = source.count("/") == 1 and not Path(source).exists() and not source.startswith((".", "/"))
    return (source if is_hub_id else Path(source).name or source), split, is_hub_id


def eval_results(metrics: dict[str, float], dataset_id: str = DATASET_ID, split: str = "validation",
                 dataset_name: str = "DiffSeg30k") -> list:
    """``EvalResult`` entries (model-index) for the benchmark metrics found in ``metrics``."""
    from huggingface_hub import EvalResult

    results = []
    for key, value in sorted(metrics.items()):
        task, _, kind = key.partition("_")
        if task not in _TASKS or kind not in _METRIC_KINDS:
            continue
        metric_type, metric_label = _METRIC_KINDS[kind]
        task_type, task_name = _TASKS[task]
        results.append(EvalResult(task_type=task_type, task_name=task_name, dataset_type=dataset_id,
                                  dataset_name=dataset_name, dataset_split=split, metric_type=metric_type,
                                  metric_name=f"{task} {metric_label}", metric_value=round(value, 4)))
    return results


def library_name(model_type: str | None) -> str:
    """'transformers' when stock transformers knows the architecture, else 'diffseg30k'."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return "transformers" if model_type in CONFIG_MAPPING_NAMES else "diffseg30k"


def _loading_note(library: str) -> str:
    if library == "transformers":
        return "`AutoModelForSemanticSegmentation.from_pretrained` loads them too"
    return "a diffseg30k architecture: `import diffseg30k.models.registry` registers it with the Auto classes"


def _label_table(id2label: dict[int, str], task: str) -> str:
    colors = label_colors(id2label, task)
    rows = ["| id | label | model | colour (RGB) |", "|---|---|---|---|"]
    for label_id, name in sorted(id2label.items()):
        generator = GENERATOR_BY_NAME.get(name)
        model = generator.display_name if generator else DISPLAY_NAMES.get(label_id, name)
        if task == "binary":
            model = "unedited" if label_id == 0 else "edited by any diffusion model"
        rgb = colors[label_id]
        rows.append(f"| {label_id} | {name} | {model} | `{tuple(rgb)}` |")
    return "\n".join(rows)


def _metrics_table(metrics: dict[str, float]) -> str:
    if not metrics:
        return ("No evaluation report was stored with this checkpoint (`diffseg30k.json` has no `eval`); "
                "score it with `diffseg30k evaluate`.")
    rows = ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    return "\n".join(rows)


def _card_body(model_name: str, repo_id: str, task: str, info: dict[str, Any], library: str, where: str,
               metrics: dict[str, Any], id2label: dict[int, str], trained: str) -> str:
    """The card's markdown below the YAML header."""
    palette = palette_json(id2label, task)
    body = f"""
# {model_name}

A **DiffSeg30k** detector ({info.get('model') or 'unknown architecture'}, task: **{task}**): it labels
every pixel of an image with the diffusion model that edited it (or background), which localizes
AI edits and attributes them to a generator. Benchmark: Ci et al., *DiffSeg30k: A Multi-Turn Diffusion
Editing Benchmark for Localized AIGC Detection* (2025), dataset
[{DATASET_ID}](https://huggingface.co/datasets/{DATASET_ID}).

## Usage

```python
from diffseg30k import Detector  # pip install "diffseg30k[demo]"

detector = Detector.from_pretrained("{repo_id}")
result = detector("photo.jpg")
print(result.is_edited, result.edited_fraction, result.generators)
```

Weights: `config.json` + `model.safetensors` ({_loading_note(library)}). Images are processed at
native resolution (no resizing: it erases the generator traces); command line:
`diffseg30k predict --checkpoint {repo_id} --out predictions photo.jpg`.

## Evaluation (last report stored with the checkpoint: {where})

{_metrics_table(metrics)}

## Labels

{_label_table(id2label, task)}

Palette (label id -> RGB), as used by `diffseg30k.labels.label_colors` and `diffseg30k.render`:

```json
{json.dumps(palette)}
```

## Training

{trained}; step {info.get('step', 'n/a')}; {info.get('train_images', 'n/a')} training images.

## Citation

```bibtex
@article{{ci2025diffseg30k,
  title   = {{DiffSeg30k: A Multi-Turn Diffusion Editing Benchmark for Localized AIGC Detection}},
  author  = {{Ci, Hai and Peng, Ziheng and Yang, Pei and Xuan, Yingxin and Shou, Mike Zheng}},
  year    = {{2025}}
}}
```
"""
    return body


def build_model_card(checkpoint: str | os.PathLike, repo_id: str, license: str = DEFAULT_LICENSE,
                     dataset_id: str | None = None, extra_tags: Iterable[str] = ()):
    """A ``huggingface_hub.ModelCard`` for a checkpoint folder, ready to save as ``README.md``."""
    from huggingface_hub import ModelCard, ModelCardData

    info = read_checkpoint_info(checkpoint)
    task = str(info.get("task") or "semantic")
    evaluated, split, on_hub = evaluated_on(info)
    if dataset_id:
        evaluated, on_hub = dataset_id, True
    dataset_name = ("DiffSeg30k" if on_hub else f"DiffSeg30k-format local folder {evaluated}" if evaluated
                    else "unrecorded DiffSeg30k-format data")
    metrics = last_evaluation(info)
    count = metrics.pop("num_images", None)
    raw_labels = info.get("id2label") or {}
    id2label = {int(k): str(v) for k, v in raw_labels.items()} or load_label_set().id2label
    model_name = repo_id.split("/")[-1]
    tags = list(dict.fromkeys([*BASE_TAGS, f"{task}-task", *(t for t in [info.get("model_type")] if t),
                               *extra_tags]))
    library = library_name(info.get("model_type"))
    data = ModelCardData(
        library_name=library, pipeline_tag="image-segmentation", license=license,
        datasets=[evaluated] if on_hub else None, tags=tags,  # only data the model saw (a Hub id)
        metrics=["mean_iou", "accuracy"], model_name=model_name,
        eval_results=(eval_results(metrics, evaluated, split, dataset_name) if evaluated else None) or None)
    where = f"{split} split of " + (f"`{evaluated}`" if on_hub else f"the local folder `{evaluated}`"
                                    if evaluated else "data the checkpoint does not record")
    if count:
        where += f", {int(count)} images"
    training = info.get("training") or {}
    trained = ", ".join(f"{k}={training[k]}" for k in ("model", "max_steps", "crop_size", "lr", "batch_size")
                        if k in training) or "not recorded"
    body = _card_body(model_name, repo_id, task, info, library, where, metrics, id2label, trained)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
