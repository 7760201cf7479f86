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
from diffseg30k.io import atomic_dir, safetensors_names, sha256_file

REPO_TYPES = ("model", "dataset", "space")
CONNECT_TIMEOUT_S = 10.0
#: Files of a checkpoint folder that may be uploaded, besides ``*.safetensors`` weights and the card.
MODEL_FILES = ("config.json", "diffseg30k.json", "preprocessor_config.json", "model.safetensors.index.json")
#: Files of a converted dataset folder that may be uploaded, besides ``data/*.parquet``.
DATASET_FILES = ("README.md", "id2label.json", "conversion.json")
DATASET_PLACEHOLDER = "path/to/dataset"  # the repository name `diffseg30k convert` writes into its card
SPACES_DIR = Path(__file__).resolve().parents[2] / "spaces"


@dataclass(frozen=True)
class RepoFile:
    """One file of a staged repository folder."""

    path: str
    size: int
    sha256: str


def _listing(folder: Path, allowed, what: str) -> tuple[list[Path], list[str]]:
    """(allowed files of ``folder``, "name: reason" for everything left out); symbolic links are never
    followed, and files inside sub-folders are only taken where ``allowed`` accepts their relative path."""
    keep, left_out = [], []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in Path(rel).parts):
            continue
        if path.is_symlink():
            left_out.append(f"{rel}: symbolic link (not followed; links are never published)")
        elif any(parent.is_symlink() for parent in path.relative_to(folder).parents if str(parent) != "."):
            continue  # inside a linked folder: the link itself is listed
        elif path.is_dir():
            continue
        elif allowed(rel):
            keep.append(path)
        elif rel != "README.md":  # the card is regenerated / kept separately
            left_out.append(f"{rel}: not one of the files a {what} repository publishes")
    return keep, left_out


def _model_file(rel: str) -> bool:
    return rel in MODEL_FILES or ("/" not in rel and rel.endswith(".safetensors"))


def checkpoint_files(checkpoint: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """(files to publish, "name: reason" for each file left out) of a checkpoint folder.

    Only :data:`MODEL_FILES` and ``*.safetensors`` at the top level are published (no tokens, notes or
    pickles can leak); symbolic links are never followed. Raises :class:`HubError` for a folder without
    ``config.json`` or readable safetensors weights.
    """
    source = Path(checkpoint)
    if not source.is_dir():
        raise HubError(f"{source}: not a checkpoint folder")
    keep, left_out = _listing(source, _model_file, "model")
    names = {p.name for p in keep}
    if "config.json" not in names:
        why = " (it is a symbolic link)" if (source / "config.json").is_symlink() else ""
        raise HubError(f"{source}: no config.json{why} (is this a checkpoint exported by "
                       "`diffseg30k train`?)")
    weights = [p for p in keep if p.suffix == ".safetensors"]
    if not weights:
        raise HubError(f"{source}: no *.safetensors weights (only safetensors files that are not links "
                       "are published)")
    _check_safetensors(weights)
    return keep, left_out


def stage_model_repo(checkpoint: str | os.PathLike, out: str | os.PathLike, repo_id: str,
                     license: str = DEFAULT_LICENSE, overwrite: bool = False,
                     dataset_id: str | None = None) -> tuple[Path, list[str]]:
    """Write the model repository folder (publishable checkpoint files + ``README.md`` card).

    Returns (folder, "name: reason" for each file left out, e.g. optimizer states, notes or links).
    """
    keep, skipped = checkpoint_files(checkpoint)
    card = build_model_card(checkpoint, repo_id, license=license, dataset_id=dataset_id)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for path in keep:
            shutil.copyfile(path, tmp / path.name, follow_symlinks=False)
        card.save(tmp / "README.md")
    return Path(out), skipped


def _check_safetensors(paths: list[Path]) -> None:
    """Every weights file readable, and its tensor names exactly those the folder's config builds
    (catches e.g. a checkpoint saved after inference-time layer fusion, which would load half random)."""
    for path in paths:
        try:
            safetensors_names(path)
        except ValueError as err:
            raise HubError(str(err)) from err
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
            str(folder), use_safetensors=True, trust_remote_code=False, output_loading_info=True,
            ignore_mismatched_sizes=True)  # reported below by name, not as "look at the above report"
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
    mismatched = [_shapes(item) for item in info.get("mismatched_keys", [])]
    if mismatched:
        raise HubError(f"{folder}: tensor shapes in the weights do not match config.json: "
                       f"{_few(sorted(mismatched))}; was it saved with another config?")
    if missing or unexpected:
        raise HubError(f"{folder}: the weights do not match config.json (missing: {_few(missing)}; "
                       f"unexpected: {_few(unexpected)}); was it saved from a modified model?")


def _shapes(item) -> str:
    """``name (weights A x B, config C x D)`` of a transformers mismatched-key entry."""
    if isinstance(item, tuple | list) and len(item) == 3:
        name, stored, wanted = item
        return f"{name} (weights {tuple(stored)}, config {tuple(wanted)})"
    return str(item)


def _few(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "") if names else "none"


def _dataset_file(rel: str) -> bool:
    shard = rel.startswith("data/") and rel.count("/") == 1 and rel.endswith(".parquet")
    return rel in DATASET_FILES or shard


def stage_dataset_repo(folder: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                       repo_id: str | None = None) -> tuple[Path, list[str]]:
    """Copy a converted dataset folder's own files (``README.md`` card, ``id2label.json``,
    ``conversion.json``, ``data/*.parquet``); the card's placeholder repository name
    (``"path/to/dataset"``) becomes ``repo_id``. Symbolic links are refused (never followed).

    Returns (folder, "name: reason" for each file left out).
    """
    source = Path(folder)
    links = [name for name in ("README.md", "data") if (source / name).is_symlink()]
    if links:
        raise HubError(f"{source / links[0]}: is a symbolic link; links are never published "
                       "(copy the real files into the folder)")
    missing = [name for name in ("README.md", "data") if not (source / name).exists()]
    if not source.is_dir() or missing:
        what = ", ".join(missing) or "folder"
        raise HubError(f"{source}: not a converted dataset folder (missing {what}); "
                       "build one with `diffseg30k convert`")
    keep, left_out = _listing(source, _dataset_file, "dataset")
    if not any(p.suffix == ".parquet" for p in keep):
        raise HubError(f"{source / 'data'}: no parquet shards (symbolic links are not followed)")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for path in keep:
            target = tmp / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target, follow_symlinks=False)
        card = tmp / "README.md"
        if repo_id:
            card.write_text(card.read_text().replace(f'"{DATASET_PLACEHOLDER}"', f'"{repo_id}"'))
    return Path(out), left_out


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
                shutil.copyfile(path, tmp / "checkpoint" / path.name, follow_symlinks=False)
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
    skipped: list[str]  # "name: reason" for each source file left out
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
            folder, skipped = stage_dataset_repo(_required(source, "dataset folder"), out, overwrite,
                                                 repo_id)
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
