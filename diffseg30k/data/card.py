"""The dataset card (README.md with YAML ``configs``/``dataset_info``) of a converted DiffSeg30k folder."""

from __future__ import annotations

from typing import Any

from diffseg30k.labels import DISPLAY_NAMES, IGNORE_INDEX, LabelSet

CITATION = """@article{ci2025diffseg30k,
  title   = {DiffSeg30k: A Multi-Turn Diffusion Editing Benchmark for Localized AIGC Detection},
  author  = {Ci, Hai and Peng, Ziheng and Yang, Pei and Xuan, Yingxin and Shou, Mike Zheng},
  year    = {2025}
}"""

_BODY = """# DiffSeg30k

DiffSeg30k (Ci et al., 2025) is a benchmark for *localized* AI-edit detection: COCO-based images, each
edited 1-3 times by diffusion inpainting, with a per-pixel mask that says which of eight diffusion
models last edited each pixel. Detection becomes semantic segmentation: where was the image edited,
and by which model. Original release: https://huggingface.co/datasets/Chaos2629/Diffseg30k

This repository was built by `diffseg30k convert` from the DiffSeg30k toolkit; it loads with no custom
code:

```python
from datasets import load_dataset
ds = load_dataset("{repo}")  # or a local folder
ds["{first_split}"][0]["mask"]  # PIL "L" label map, values below
```

or, with the task mapping (semantic or binary) applied: `diffseg30k.load_benchmark("{repo}", task="binary")`.

## Splits

{split_table}

## Columns

| column | type | meaning |
|---|---|---|
| `id` | string | sample id (8 digits in the official release) |
| `image` | image | the edited RGB image |
| `mask` | image | "L" label map: 0 background, 1-8 the generator that last edited the pixel, 255 ignore |
| `models` | list of string | generators present in the mask |
| `edited_fraction` | float32 | share of non-ignored pixels that were edited |
{meta_rows}
## Labels

{label_table}

{ignore} = ignore. The binary task maps every id > 0 to 1 ("edited"). `id2label.json` holds the mapping.

## Licence

The dataset is derived from COCO and distributed under the COCO licence (annotations CC BY 4.0; images
under the Flickr terms of use, https://cocodataset.org/#termsofuse) without additional restrictions.

## Citation

```bibtex
{citation}
```
"""

_META_ROWS = """| `base` | string | "real" (COCO photo) or "ai" (generated from a COCO caption) base image |
| `base_source` | string | where the base image came from |
| `turns` | list of struct | each edit: generator, edit_type, prompt, mask_area, seed, quality |
| `metadata` | string | the source's full metadata row as JSON text |
"""


def label_table(label_set: LabelSet) -> str:
    """Markdown table of ids, names, display names and colours."""
    lines = ["| id | name | model | colour (RGB) |", "|---|---|---|---|"]
    for i, name in sorted(label_set.id2label.items()):
        display = DISPLAY_NAMES.get(i, name) if label_set.id2label == LabelSet().id2label else name
        lines.append(f"| {i} | {name} | {display} | {tuple(label_set.colors[i])} |")
    return "\n".join(lines)


_FOREIGN_BODY = """# {name}

{description}

Converted by `diffseg30k convert` from the DiffSeg30k toolkit ({layout} layout) for cross-dataset
evaluation; source: {source}. It loads with no custom code (`datasets.load_dataset("{repo}")`) or with
`diffseg30k.load_benchmark("{repo}", task="binary")`.

**Binary-only**: masks say edited (1) or unedited (0), not which generator edited a pixel, so only the
binary task applies (`load_benchmark` refuses `task="semantic"`). Source masks (0/255, possibly JPEG) were
binarised: a pixel is edited when the mean of its channels exceeds 127.5 (grey >= 128, 8-bit scale), or,
for a mask with transparency, where its alpha is below 128.

## Splits

{split_table}

## Licence

{licence}

## Citation

{citation}
"""


def render_card(features: Any, split_counts: dict[str, int | None], split_bytes: dict[str, int],
                label_set: LabelSet, repo: str = "path/to/dataset", about: dict[str, str] | None = None,
                provenance: str | None = None) -> str:
    """README.md text: YAML metadata (configs per split, dataset_info features/splits) + prose.

    A count of None (the template in ``dataset_script/``) leaves the split sizes out. ``about`` (name,
    description, layout, source, licence, citation) describes a converted non-DiffSeg30k dataset.
    ``provenance`` (a generated source's ``PROVENANCE.md``, e.g. the mini stand-in's) replaces the COCO
    origin and licence text.
    """
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    splits = SplitDict()
    for name, count in split_counts.items():
        if count is not None:
            splits.add(SplitInfo(name, num_bytes=split_bytes.get(name, 0), num_examples=count))
    total = sum(split_bytes.values())
    examples = sum(c for c in split_counts.values() if c is not None)
    info = DatasetInfo(features=features, splits=splits or None, download_size=total or None,
                       dataset_size=total or None)
    card = DatasetCardData(
        license="other", license_name="coco" if about is None else "see-card",
        license_link="https://cocodataset.org/#termsofuse" if about is None else None,
        task_categories=["image-segmentation"], task_ids=["semantic-segmentation"],
        tags=["aigc-detection", "image-forensics", "diffusion", "inpainting",
              "diffseg30k" if about is None else "binary-only"],
        pretty_name="DiffSeg30k" if about is None else about["name"],
        size_categories=[_size_category(examples or 30_000)],
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card)
    data_files = [{"split": name, "path": f"data/{name}-*"} for name in split_counts]
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card)
    rows = ["| split | examples |", "|---|---|"]
    rows += [f"| {n} | {'(set by the converter)' if c is None else c} |" for n, c in split_counts.items()]
    if about is not None:
        return f"---\n{card.to_yaml()}\n---\n\n" + _FOREIGN_BODY.format(
            repo=repo, split_table="\n".join(rows), **about)
    body = _BODY.format(repo=repo, first_split=next(iter(split_counts), "train"), split_table="\n".join(rows),
                        meta_rows=_META_ROWS if "turns" in features else "",
                        label_table=label_table(label_set), ignore=IGNORE_INDEX, citation=CITATION)
    if provenance:
        head, _, rest = body.partition("## Splits")
        licence_start, licence_end = rest.index("## Licence"), rest.index("## Citation")
        body = (head.split("\n\nThis repository was built")[0].split("\n", 1)[0] + "\n\n" + provenance.strip()
                + "\n\nThis repository was built" + head.split("\n\nThis repository was built", 1)[1]
                + "## Splits" + rest[:licence_start] + rest[licence_end:])
    return f"---\n{card.to_yaml()}\n---\n\n{body}"


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M"
