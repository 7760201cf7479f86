"""Hub publishing: model cards (:mod:`.card`), repository staging, the dry run and pushes (:mod:`.repo`).

``diffseg30k push model|dataset|space`` is a thin shell over :func:`publish`.
"""

from diffseg30k.hub.card import (
    DATASET_ID,
    DEFAULT_LICENSE,
    HubError,
    build_model_card,
    eval_results,
    last_evaluation,
    read_checkpoint_info,
)
from diffseg30k.hub.repo import (
    CHECKPOINT_ENV,
    PushPlan,
    RepoFile,
    check_hub_access,
    checkpoint_files,
    format_manifest,
    publish,
    push_folder,
    repo_files,
    stage_dataset_repo,
    stage_model_repo,
    stage_space_repo,
)
from diffseg30k.labels import label_colors  # re-exported: the palette resolver lives in labels

__all__ = ["CHECKPOINT_ENV", "DATASET_ID", "DEFAULT_LICENSE", "HubError", "PushPlan", "RepoFile",
           "build_model_card", "check_hub_access", "checkpoint_files", "eval_results", "format_manifest",
           "label_colors", "last_evaluation", "publish", "push_folder", "read_checkpoint_info", "repo_files",
           "stage_dataset_repo", "stage_model_repo", "stage_space_repo"]
