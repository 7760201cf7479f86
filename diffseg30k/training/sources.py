"""Resolve ``TrainConfig.dataset`` into train/eval tables, the label set, holdouts and extra negatives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffseg30k.labels import GENERATOR_NAMES, load_label_set
from diffseg30k.models.common import default_id2label


def _load(source: Any, task: str):
    from datasets import Dataset, DatasetDict

    if isinstance(source, Dataset | DatasetDict):
        return source
    from diffseg30k import load_benchmark

    return load_benchmark(str(source), task=task)


def label_set_for(source: Any, task: str) -> dict[int, str]:
    """The dataset's ``id2label.json`` for the semantic task when it has one, else the default."""
    if task == "semantic" and isinstance(source, str | Path) and Path(source).is_dir():
        return dict(load_label_set(source).id2label)
    return default_id2label(task)


def drop_holdout(table, holdout: tuple[str, ...] | list[str]):
    """Rows whose ``models`` list contains none of the ``holdout`` generators."""
    held = {name.strip() for name in holdout if name.strip()}
    if not held:
        return table
    unknown = held - set(GENERATOR_NAMES)
    if unknown:
        raise ValueError(f"--holdout: unknown generator(s) {sorted(unknown)}; "
                         f"known: {', '.join(GENERATOR_NAMES)}")
    if "models" not in table.column_names:
        raise ValueError("--holdout needs a 'models' column listing each image's generators")
    kept = table.filter(lambda models: not held.intersection(models or []), input_columns="models")
    if len(kept) == 0:
        raise ValueError(f"--holdout {sorted(held)} removed every training image")
    return kept


def resolve_splits(source: Any, task: str, train_split: str, eval_split: str | None,
                   holdout: tuple[str, ...], max_eval_samples: int | None):
    """(train table, eval table or None) with the holdout applied to training only."""
    from datasets import Dataset

    data = _load(source, task)
    if isinstance(data, Dataset):
        train, evaluation = data, None
    else:
        if train_split not in data:
            raise ValueError(f"dataset has no {train_split!r} split (splits: {', '.join(data)})")
        train = data[train_split]
        evaluation = data[eval_split] if eval_split and eval_split in data else None
    for column in ("image", "mask"):
        if column not in train.column_names:
            raise ValueError(f"training data lacks the {column!r} column (has {train.column_names})")
    train = drop_holdout(train, holdout)
    if evaluation is not None and max_eval_samples is not None and len(evaluation) > max_eval_samples:
        evaluation = evaluation.select(range(max_eval_samples))
    return train, evaluation


def shard_files(source: Any, split: str) -> list[Path]:
    """The parquet shards of ``split`` when ``source`` is a local folder or release (to name a bad row's
    shard in errors); empty for in-memory datasets and Hub ids."""
    if not isinstance(source, str | Path) or not Path(source).exists():
        return []
    from diffseg30k.data.load import resolve_source

    folder = Path(resolve_source(source, progress=False)) / "data"  # a raw release: its cached conversion
    return sorted(folder.glob(f"{split}-*.parquet")) if folder.is_dir() else []
