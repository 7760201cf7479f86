"""Hub publishing: model cards, repository staging (the dry run) and pushes through ``HfApi``.

Every push first *stages* the exact repository folder (what ``--dry-run --out DIR`` leaves on disk),
then uploads that folder with ``HfApi.upload_folder``. Model repositories carry safetensors weights
only; pickled files in a checkpoint folder are never uploaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffseg30k.io import atomic_dir, sha256_file
from diffseg30k.labels import (
    BINARY_COLORS,
    COLORS,
    DISPLAY_NAMES,
    GENERATOR_BY_NAME,
    ID2LABEL,
    load_label_set,
)

DATASET_ID = "Chaos2629/Diffseg30k"
DEFAULT_LICENSE = "apache-2.0"
DETECTOR_FILE = "diffseg30k.json"
REPO_TYPES = ("model", "dataset", "space")
CONNECT_TIMEOUT_S = 10.0
#: Environment variable naming the demo's detector (Hub id or folder); `push space` sets it on the Space.
CHECKPOINT_ENV = "DIFFSEG_CHECKPOINT"
#: Files of a checkpoint folder that may be uploaded (weights: safetensors only).
MODEL_FILE_SUFFIXES = (".safetensors", ".json", ".txt", ".md")
BASE_TAGS = ["diffseg30k", "aigc-detection", "image-forensics", "semantic-segmentation",
             "diffusion-edit-localization"]
DATASET_PLACEHOLDER = "path/to/dataset"  # the repository name `diffseg30k convert` writes into its card
SPACES_DIR = Path(__file__).resolve().parent.parent / "spaces"

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


@dataclass(frozen=True)
class RepoFile:
    """One file of a staged repository folder."""

    path: str
    size: int
    sha256: str


# ----------------------------------------------------------------------------------------- model card
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
    is a Hub id, else the local folder's name (the card then says it was a local folder)."""
    training = info.get("training") or {}
    source = str(training.get("dataset") or "")
    split = str(training.get("eval_split") or "validation")
    if not source:
        return DATASET_ID, split, True
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


def label_colors(id2label: dict[int, str], task: str) -> dict[int, tuple[int, int, int]]:
    """Colour per label id: the paper palette by generator name (custom label sets included), the
    binary palette for binary detectors, a deterministic colour for unknown names."""
    if task == "binary":
        return {i: BINARY_COLORS.get(i, (0, 0, 0)) for i in id2label}
    known = {name: COLORS[i] for i, name in ID2LABEL.items()}
    colors = {}
    for label_id, name in id2label.items():
        digest = hashlib.sha256(name.encode()).digest()
        colors[label_id] = known.get(name) or (digest[0], digest[1], digest[2])
    return colors


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


def build_model_card(checkpoint: str | os.PathLike, repo_id: str, license: str = DEFAULT_LICENSE,
                     dataset_id: str | None = None, extra_tags: Iterable[str] = ()):
    """A ``huggingface_hub.ModelCard`` for a checkpoint folder, ready to save as ``README.md``."""
    from huggingface_hub import ModelCard, ModelCardData

    info = read_checkpoint_info(checkpoint)
    task = str(info.get("task") or "semantic")
    evaluated, split, on_hub = evaluated_on(info)
    if dataset_id:
        evaluated, on_hub = dataset_id, True
    dataset_name = "DiffSeg30k" if on_hub else f"DiffSeg30k-format local folder {evaluated}"
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
        datasets=sorted({DATASET_ID, evaluated} if on_hub else {DATASET_ID}), tags=tags,
        metrics=["mean_iou", "accuracy"], model_name=model_name,
        eval_results=eval_results(metrics, evaluated, split, dataset_name) or None)
    where = f"{split} split of " + (f"`{evaluated}`" if on_hub else f"the local folder `{evaluated}`")
    if count:
        where += f", {int(count)} images"
    training = info.get("training") or {}
    trained = ", ".join(f"{k}={training[k]}" for k in ("model", "max_steps", "crop_size", "lr", "batch_size")
                        if k in training) or "not recorded"
    palette = {str(i): list(rgb) for i, rgb in sorted(label_colors(id2label, task).items())}
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
`diffseg30k predict --checkpoint {repo_id} photo.jpg`.

## Evaluation (last report stored with the checkpoint: {where})

{_metrics_table(metrics)}

## Labels

{_label_table(id2label, task)}

Palette (label id -> RGB), as used by `diffseg30k.labels.colorize`:

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
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


# -------------------------------------------------------------------------------------------- staging
def checkpoint_files(checkpoint: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """(files to publish, names skipped) of a checkpoint folder; safetensors weights only.

    Raises :class:`HubError` for a folder without ``config.json`` or readable safetensors weights.
    """
    source = Path(checkpoint)
    if not source.is_dir():
        raise HubError(f"{source}: not a checkpoint folder")
    if not (source / "config.json").is_file():
        raise HubError(f"{source}: no config.json (is this a checkpoint exported by `diffseg30k train`?)")
    weights = sorted(source.glob("*.safetensors"))
    if not weights:
        raise HubError(f"{source}: no *.safetensors weights (only safetensors are published)")
    _check_safetensors(weights)
    files = [p for p in sorted(source.iterdir()) if p.is_file() and not p.name.startswith(".")]
    keep = [p for p in files if p.suffix in MODEL_FILE_SUFFIXES and p.name != "README.md"]
    return keep, [p.name for p in files if p not in keep and p.name != "README.md"]


def stage_model_repo(checkpoint: str | os.PathLike, out: str | os.PathLike, repo_id: str,
                     license: str = DEFAULT_LICENSE, overwrite: bool = False,
                     dataset_id: str | None = None) -> tuple[Path, list[str]]:
    """Write the model repository folder (publishable checkpoint files + ``README.md`` card).

    Returns (folder, names of skipped files such as pickles or optimizer states).
    """
    keep, skipped = checkpoint_files(checkpoint)
    card = build_model_card(checkpoint, repo_id, license=license, dataset_id=dataset_id)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for path in keep:
            shutil.copy2(path, tmp / path.name)
        card.save(tmp / "README.md")
    return Path(out), skipped


def _check_safetensors(paths: list[Path]) -> None:
    from safetensors import safe_open

    for path in paths:
        try:
            with safe_open(str(path), framework="numpy") as handle:
                handle.keys()
        except Exception as err:  # safetensors raises its own error types
            raise HubError(f"{path}: not a readable safetensors file ({err})") from err


def stage_dataset_repo(folder: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                       repo_id: str | None = None) -> Path:
    """Copy a converted dataset folder (``README.md`` card, ``id2label.json``, ``data/*.parquet``); the
    card's placeholder repository name (``"path/to/dataset"``) becomes ``repo_id``."""
    source = Path(folder)
    missing = [name for name in ("README.md", "data") if not (source / name).exists()]
    if not source.is_dir() or missing:
        what = ", ".join(missing) or "folder"
        raise HubError(f"{source}: not a converted dataset folder (missing {what}); "
                       "build one with `diffseg30k convert`")
    if not any((source / "data").glob("*.parquet")):
        raise HubError(f"{source / 'data'}: no parquet shards")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        card = tmp / "README.md"
        if repo_id:
            card.write_text(card.read_text().replace(f'"{DATASET_PLACEHOLDER}"', f'"{repo_id}"'))
    return Path(out)


def stage_space_repo(out: str | os.PathLike, checkpoint: str | None = None, overwrite: bool = False,
                     spaces_dir: Path = SPACES_DIR) -> Path:
    """The Space folder: ``spaces/`` plus a copy of the ``diffseg30k`` package (so ``app.py`` imports it).

    ``checkpoint``: a local checkpoint folder is bundled as ``checkpoint/`` (the app's default);
    a Hub id is linked in the card's ``models`` list (set the Space variable DIFFSEG_CHECKPOINT to it).
    """
    if not (spaces_dir / "app.py").is_file():
        raise HubError(f"{spaces_dir}: no app.py (`push space` runs from a source checkout of the toolkit)")
    package = Path(__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "checkpoint")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        shutil.copytree(spaces_dir, tmp, dirs_exist_ok=True, ignore=ignore)
        shutil.copytree(package, tmp / "diffseg30k", ignore=ignore)
        if checkpoint and Path(checkpoint).is_dir():
            (tmp / "checkpoint").mkdir()
            for path in checkpoint_files(checkpoint)[0]:
                shutil.copy2(path, tmp / "checkpoint" / path.name)
        elif checkpoint:
            _link_model_in_space_card(tmp / "README.md", checkpoint)
    return Path(out)


def _link_model_in_space_card(card_path: Path, model_id: str) -> None:
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(card_path)
    models = list(card.data.get("models") or [])
    card.data.models = list(dict.fromkeys([model_id, *models]))
    card.save(card_path)


def repo_files(folder: str | os.PathLike) -> list[RepoFile]:
    """Every file a push of ``folder`` uploads, sorted, with size and sha256."""
    root = Path(folder)
    return [RepoFile(p.relative_to(root).as_posix(), p.stat().st_size, sha256_file(p))
            for p in sorted(root.rglob("*")) if p.is_file()]


def format_manifest(files: list[RepoFile]) -> str:
    """A printable listing: size, sha256 and path per file, then the total."""
    lines = [f"{f.size:>12,}  {f.sha256}  {f.path}" for f in files]
    lines.append(f"{sum(f.size for f in files):>12,}  total, {len(files)} files")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- pushes
def check_hub_access(token: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """Fail fast and clearly before any upload: offline mode, no token, Hub unreachable, bad token.

    Returns the token to use.
    """
    from huggingface_hub import constants, get_token
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise HubError("HF_HUB_OFFLINE is set: pushing needs the network. Unset HF_HUB_OFFLINE, or use "
                       "--dry-run --out DIR to write the repository folder without uploading.")
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write "
                       "access), or use --dry-run --out DIR to stage the repository without uploading.")
    try:
        response = get_session().get(f"{constants.ENDPOINT}/api/whoami-v2",
                                     headers=build_hf_headers(token=token), timeout=timeout)
        hf_raise_for_status(response)
    except Exception as err:  # network errors (httpx) and HTTP errors (HfHubHTTPError)
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 401:
            raise HubError("the Hugging Face token was rejected (401): run `hf auth login --force`") from err
        raise HubError(f"cannot reach {constants.ENDPOINT} within {timeout:.0f} s "
                       f"({type(err).__name__}: {err})") from err
    return token


def push_folder(folder: str | os.PathLike, repo_id: str, repo_type: str, token: str, private: bool = False,
                revision: str | None = None, commit_message: str | None = None,
                space_variables: dict[str, str] | None = None) -> str:
    """Create the repository if needed (and the ``revision`` branch), upload ``folder``; returns the commit
    URL. Call :func:`check_hub_access` first for a fast, clear failure."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True,
                    space_sdk="gradio" if repo_type == "space" else None)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    for key, value in (space_variables or {}).items():
        api.add_space_variable(repo_id, key, value)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type, revision=revision,
                             commit_message=commit_message or f"Upload {repo_type} with diffseg30k push")
    return str(getattr(info, "commit_url", info))


@dataclass
class PushPlan:
    """What :func:`publish` did: the staged folder, its files, skipped inputs and the commit URL."""

    folder: Path
    files: list[RepoFile]
    skipped: list[str]
    url: str | None = None


def publish(repo_type: str, repo_id: str, source: str | os.PathLike | None = None, *,
            out: str | os.PathLike | None = None, dry_run: bool = False, private: bool = False,
            revision: str | None = None, token: str | None = None, license: str = DEFAULT_LICENSE,
            checkpoint: str | None = None, overwrite: bool = False,
            dataset_id: str | None = None) -> PushPlan:
    """Stage ``source`` as a ``repo_type`` repository (in ``out``, else a temporary folder) and upload it
    unless ``dry_run``. Access is checked before staging, so offline or token-less runs fail in seconds.

    model: ``source`` = checkpoint folder; dataset: ``source`` = converted dataset folder;
    space: ``spaces/`` is used, ``checkpoint`` bundles a local folder or links a Hub model id.
    """
    import tempfile

    if repo_type not in REPO_TYPES:
        raise HubError(f"unknown repo type {repo_type!r}; expected one of {REPO_TYPES}")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"{repo_id!r}: expected a repository id 'owner/name'")
    if not dry_run:
        token = check_hub_access(token)
    scratch = None
    if out is None:
        scratch = Path(tempfile.mkdtemp(prefix="diffseg30k-push-"))
        out = scratch / repo_id.split("/")[1]
    try:
        skipped: list[str] = []
        if repo_type == "model":
            folder, skipped = stage_model_repo(_required(source, "checkpoint"), out, repo_id, license,
                                               overwrite, dataset_id)
        elif repo_type == "dataset":
            folder = stage_dataset_repo(_required(source, "dataset folder"), out, overwrite, repo_id)
        else:
            folder = stage_space_repo(out, checkpoint, overwrite)
        plan = PushPlan(folder, repo_files(folder), skipped)
        if not dry_run:
            variables = ({CHECKPOINT_ENV: checkpoint} if repo_type == "space" and checkpoint
                         and not Path(checkpoint).is_dir() else None)
            plan.url = push_folder(folder, repo_id, repo_type, token, private, revision,
                                   space_variables=variables)
        return plan
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _required(source: str | os.PathLike | None, what: str) -> str | os.PathLike:
    if source is None:
        raise HubError(f"a {what} is required")
    return source
