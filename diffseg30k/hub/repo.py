"""Repository staging (the exact folder a push uploads, i.e. the dry run) and pushes through ``HfApi``.

Every push first *stages* the repository folder (what ``--dry-run --out DIR`` leaves on disk), then
uploads it with ``HfApi.upload_folder``. Model repositories carry safetensors weights only; pickled
files in a checkpoint folder are never uploaded. Access (offline mode, token, network) is checked
before anything is staged, so a push that cannot work fails in seconds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from diffseg30k.checkpoint import CHECKPOINT_ENV  # the demo's detector variable; `push space` sets it
from diffseg30k.hub.card import DEFAULT_LICENSE, HubError, build_model_card
from diffseg30k.io import atomic_dir, sha256_file

REPO_TYPES = ("model", "dataset", "space")
CONNECT_TIMEOUT_S = 10.0
#: Files of a checkpoint folder that may be uploaded (weights: safetensors only).
MODEL_FILE_SUFFIXES = (".safetensors", ".json", ".txt", ".md")
DATASET_PLACEHOLDER = "path/to/dataset"  # the repository name `diffseg30k convert` writes into its card
SPACES_DIR = Path(__file__).resolve().parents[2] / "spaces"


@dataclass(frozen=True)
class RepoFile:
    """One file of a staged repository folder."""

    path: str
    size: int
    sha256: str


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
    """Every weights file readable, and its tensor names exactly those the folder's config builds
    (catches e.g. a checkpoint saved after inference-time layer fusion, which would load half random)."""
    from safetensors import safe_open

    stored: set[str] = set()
    for path in paths:
        try:
            with safe_open(str(path), framework="numpy") as handle:
                stored.update(handle.keys())
        except Exception as err:  # safetensors raises its own error types
            raise HubError(f"{path}: not a readable safetensors file ({err})") from err
    _check_weights_match_config(paths[0].parent)


def _check_weights_match_config(folder: Path) -> None:
    """Load the checkpoint the way users will (safetensors, no remote code) and refuse it when weights
    are missing or unexpected, e.g. one saved after inference-time layer fusion (it would load half
    random). Skipped when transformers does not know the architecture."""
    try:
        from transformers import AutoModelForSemanticSegmentation

        import diffseg30k.models.registry  # noqa: F401  (registers the toolkit's architectures)
    except ImportError:
        return
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # our message below says what the load report would
    try:
        _, info = AutoModelForSemanticSegmentation.from_pretrained(
            str(folder), use_safetensors=True, trust_remote_code=False, output_loading_info=True)
    except (ValueError, KeyError) as err:  # an architecture transformers cannot build
        if "Unrecognized" in str(err) or isinstance(err, KeyError):
            return
        raise HubError(f"{folder}: the checkpoint does not load ({err})") from err
    except (OSError, RuntimeError) as err:  # unreadable files; tensor shapes that contradict config.json
        raise HubError(f"{folder}: the checkpoint does not load with its config.json "
                       f"({type(err).__name__}: {err})") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    missing, unexpected = sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", []))
    if missing or unexpected:
        raise HubError(f"{folder}: the weights do not match config.json (missing: {_few(missing)}; "
                       f"unexpected: {_few(unexpected)}); was it saved from a modified model?")


def _few(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "") if names else "none"


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
    package = Path(__file__).resolve().parents[1]  # the diffseg30k package
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
    if repo_type == "model" and source is not None and Path(source).is_dir():
        source = _checkpoint_folder(source)  # a training run folder means its best/
    if repo_type == "space" and checkpoint and Path(checkpoint).is_dir():
        checkpoint = str(_checkpoint_folder(checkpoint))
    if repo_type in ("model", "dataset") and not Path(_required(source, repo_type + " folder")).is_dir():
        raise HubError(f"{source}: not a folder (a local {repo_type} folder is pushed)")
    if repo_type == "space" and checkpoint and not Path(checkpoint).is_dir() and (
            Path(checkpoint).exists() or str(checkpoint).count("/") != 1
            or str(checkpoint).startswith((".", "/", "~"))):
        raise HubError(f"{checkpoint}: not a checkpoint folder or a Hub model id 'owner/name'")
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


def _checkpoint_folder(path: str | os.PathLike) -> Path:
    """The checkpoint a folder means (itself, or a training run's best/), as every entry point reads it."""
    from diffseg30k.checkpoint import CheckpointNotFound, describe, local_checkpoint

    try:
        folder = local_checkpoint(path, require_weights=False)  # staging names a missing weight file
    except CheckpointNotFound as err:
        raise HubError(str(err)) from err
    if folder != Path(path):
        print(f"publishing {describe(path, folder)}")
    return folder


def _required(source: str | os.PathLike | None, what: str) -> str | os.PathLike:
    if source is None:
        raise HubError(f"a {what} is required")
    return source
