"""Named presets for the public localized-edit test sets, so ``load_benchmark("cocoglide")`` and
``diffseg30k evaluate --dataset opensdi-test`` work by name.

Each preset records the set's expected layout, its licence note, and where it lives: a Hub id (loaded
by id: downloaded with ``huggingface_hub``, only ``hub_files``, then converted once into the cache) or a
download page (download it yourself, then pass the folder: its layout is detected). Every entry was
documented from the set's own card or repository; what those do not say is said in ``notes``.

The presets live in the toolkit's generic registry (:data:`PRESETS`, :func:`register_preset`), so an
unknown name gets the nearest ones suggested.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diffseg30k.data.foreign import ParquetLayout, register_layout
from diffseg30k.registry import Registry


@dataclass(frozen=True)
class DatasetPreset:
    """One public test set: where it lives, its layout, licence and citation."""

    name: str
    title: str
    description: str
    #: Layout of the Hub files (a parquet layout name) or, for download-only sets, of the local folder.
    layout: str
    licence: str
    citation: str
    hub_id: str | None = None
    #: ``allow_patterns`` of the Hub download (e.g. only the test split of a large repository).
    hub_files: tuple[str, ...] = ("*.parquet",)
    download: str | None = None
    #: The split scored by default; None: every split of the converted set.
    default_split: str | None = "test"
    notes: str = ""

    @property
    def source(self) -> str:
        return f"https://huggingface.co/datasets/{self.hub_id}" if self.hub_id else str(self.download)


#: Every dataset preset, by lower-case name (the entries are registered at the end of this module).
PRESETS: Registry[DatasetPreset] = Registry("dataset preset", describe=lambda preset: preset.title)


def register_preset(preset: DatasetPreset) -> DatasetPreset:
    """Add a preset under its (lower-case) name."""
    return PRESETS.register(preset, name=preset.name.lower())


def find_preset(name: object) -> DatasetPreset | None:
    """The preset called ``name`` (case-insensitive, ``_`` = ``-``) or hosted at Hub id ``name``, or None."""
    if not isinstance(name, str):
        return None
    key = name.lower().replace("_", "-")
    if key in PRESETS:
        return PRESETS.get(key)
    return next((p for p in PRESETS.values() if p.hub_id and p.hub_id.lower() == name.lower()), None)


def get_preset(name: str) -> DatasetPreset:
    """The preset called ``name``; an unknown name raises :class:`~diffseg30k.registry.RegistryError`
    (a ``ValueError``) suggesting the nearest ones."""
    preset = find_preset(name)
    if preset is None:
        raise PRESETS.error(str(name).lower())
    return preset


def card_about(preset: str | None, layout: str) -> dict[str, str]:
    """The card fields of a converted binary-only dataset (generic ones without a preset)."""
    if preset is None:
        return {"name": "Binary-only localization dataset", "layout": layout,
                "description": "An image-manipulation-localization test set (edited / unedited masks).",
                "source": "a local folder", "licence": "Unknown: see the licence of the source dataset.",
                "citation": "See the source dataset."}
    found = get_preset(preset)
    description = found.description + (f"\n\n{found.notes}" if found.notes else "")
    return {"name": found.title, "layout": layout, "description": description, "source": found.source,
            "licence": found.licence, "citation": f"```bibtex\n{found.citation}\n```"}


def download_hub(preset: DatasetPreset, revision: str | None = None) -> Path:
    """The preset's Hub files (only ``hub_files``), from the Hub or, offline, the local Hub cache."""
    from huggingface_hub import snapshot_download

    if preset.hub_id is None:
        raise ValueError(f"{preset.name}: not on the Hub; download it from {preset.download} and pass the "
                         f"folder (expected layout: {preset.layout})")
    try:
        return Path(snapshot_download(preset.hub_id, repo_type="dataset", revision=revision,
                                      allow_patterns=list(preset.hub_files)))
    except Exception as err:  # offline, gated or missing: say which and where
        raise ValueError(f"{preset.name}: cannot download {preset.hub_id} from the Hub "
                         f"({type(err).__name__}: {err}); download it yourself and pass the folder") from err


def resolve_preset(name: str, revision: str | None = None, progress: bool = True,
                   on_error: str = "raise") -> Path:
    """The converted folder of a preset (downloaded and converted once, then cached)."""
    from diffseg30k.data.load import converted_cache

    preset = find_preset(name) or get_preset(name)
    return converted_cache([download_hub(preset, revision)], progress=progress, layout=preset.layout,
                           preset=preset.name, on_error=on_error)


# -------------------------------------------------------------------------------------------- layouts
#: Columns of the Hub-hosted sets, from their dataset cards.
PARQUET_LAYOUTS = {
    "opensdi-parquet": ParquetLayout(image="image", mask="mask", label="label", id_columns=("key",)),
    "cocoglide-parquet": ParquetLayout(image="image", mask="mask", label="label", id_columns=("key",)),
    "sid-parquet": ParquetLayout(image="image", mask="mask", label="label", id_columns=("img_id",)),
    "magicbrush-parquet": ParquetLayout(image="target_img", mask="mask_img", label=None,
                                        id_columns=("img_id", "turn_index")),
}
for _name, _layout in PARQUET_LAYOUTS.items():
    register_layout(_name, _layout.scan)

# -------------------------------------------------------------------------------------------- presets
register_preset(DatasetPreset(
    name="cocoglide", title="CocoGlide",
    description="512 COCO val2017 images locally inpainted with GLIDE (256x256) plus their 512 real "
                "originals, from TruFor (Guillaro et al., CVPR 2023).",
    layout="cocoglide-parquet", hub_id="nebula/CocoGlide", default_split=None,
    download="https://www.grip.unina.it/download/prog/TruFor/CocoGlide.zip",
    licence="GRIP-UNINA's terms for TruFor (its README: use 'only for informational and nonprofit "
            "purposes', LICENSE.txt at github.com/grip-unina/TruFor); the COCO images keep their "
            "own licences "
            "(https://cocodataset.org/#termsofuse).",
    citation="@InProceedings{Guillaro_2023_CVPR,\n  author = {Guillaro, Fabrizio and Cozzolino, "
             "Davide and Sud, "
             "Avneesh and Dufour, Nicholas and Verdoliva, Luisa},\n  title = {TruFor: Leveraging "
             "All-Round Clues "
             "for Trustworthy Image Forgery Detection and Localization},\n  booktitle = {CVPR},\n  "
             "year = {2023}\n}",
    notes="By id it loads the Hub re-packaging nebula/CocoGlide (columns key, image, mask, label 0 real / 1 "
          "fake, prompt; a real image's missing mask is all background); its splits are the "
          "re-packager's (third parties cite a 256 + 256-image validation split): pick one with --split. "
          "The original GRIP zip unpacks to CocoGlide/{real,fake,mask}/ + table.csv (columns real, fake, "
          "mask, prompt), the whole set as one test split: pass the zip or that folder, its layout is "
          "detected (prompts become GLIDE turns in the metadata).",
))
register_preset(DatasetPreset(
    name="opensdi-test", title="OpenSDI test (OpenSDID)",
    description="The OpenSDID test split (Wang et al., 2025): 10k real + 10k diffusion images per generator "
                "(SD1.5, SD2.1, SDXL, SD3, Flux.1), local edits and fully generated images, real images "
                "from megalith-10m.",
    layout="opensdi-parquet", hub_id="nebula/OpenSDI_test", default_split=None,
    licence="CC BY-SA 4.0 (the repository's README, github.com/iamwangyabin/OpenSDI); academic use, "
            "provided as is.",
    citation="@article{wang2025opensdi,\n  title = {OpenSDI: Spotting Diffusion-Generated Images in the Open "
             "World},\n  author = {Wang, Yabin and others},\n  year = {2025}\n}",
    notes="Parquet shards data/<generator>-XXXXX-of-YYYYY.parquet with columns key, image, mask, label "
          "(0 real, 1 fake); one split per generator (sd15, sd2, sdxl, sd3, flux): pick one with --split. "
          "About 18 GB.",
))
register_preset(DatasetPreset(
    name="sid-set", title="SID-Set (SIDA)",
    description="SID-Set from SIDA (Huang et al., CVPR 2025): real, fully synthetic and tampered (locally "
                "edited) images with masks for the tampered ones.",
    layout="sid-parquet", hub_id="saberzl/SID_Set", hub_files=("data/validation-*.parquet",),
    default_split="validation",
    licence="Not stated in the card text we could read; check "
            "https://huggingface.co/datasets/saberzl/SID_Set "
            "before redistributing.",
    citation="@inproceedings{huang2025sida,\n  title = {SIDA: Social Media Image Deepfake Detection, "
             "Localization and Explanation with Large Multimodal Model},\n  author = {Huang, Zhenglin and "
             "others},\n  booktitle = {CVPR},\n  year = {2025}\n}",
    notes="Columns img_id, image, mask (empty unless tampered), width, height, label (0 real, 1 full "
          "synthetic, 2 tampered). A fully synthetic image without a mask counts as edited everywhere. "
          "Only the validation split (30k rows) is downloaded; the train split is 210k rows.",
))
register_preset(DatasetPreset(
    name="magicbrush", title="MagicBrush (dev split as a localization set)",
    description="MagicBrush (Zhang et al., NeurIPS 2023): manually annotated instruction-guided edits made "
                "with DALL-E 2 inpainting inside an annotator-drawn mask; the target image is scored "
                "against that mask.",
    layout="magicbrush-parquet", hub_id="osunlp/MagicBrush", hub_files=("data/dev-*.parquet",),
    default_split="dev",
    licence="CC BY 4.0 (the licence reported for the Hub card osunlp/MagicBrush; check it before "
            "redistributing).",
    citation="@inproceedings{zhang2023magicbrush,\n  title = {MagicBrush: A Manually Annotated Dataset for "
             "Instruction-Guided Image Editing},\n  author = {Zhang, Kai and Mo, Lingbo and Chen, Wenhu and "
             "Sun, Huan and Su, Yu},\n  booktitle = {NeurIPS},\n  year = {2023}\n}",
    notes="Columns img_id, turn_index, source_img, mask_img, instruction, target_img; ids are "
          "<img_id>_<turn_index>. The card does not state how mask_img marks the region: a mask with "
          "transparency is read by DALL-E 2's convention (transparent = edited), one without by the "
          "bright-is-edited rule; check a few rows before relying on the numbers.",
))
register_preset(DatasetPreset(
    name="tgif", title="TGIF (Text-Guided Inpainting Forgery)",
    description="TGIF (Mareen et al.): ~80k COCO images inpainted by SD2, SDXL and Adobe Firefly, spliced "
                "(-sp) and fully regenerated (-fr), with segmentation and bounding-box masks.",
    layout="mani", download="https://github.com/IDLabMedia/tgif-dataset",
    licence="CC BY-SA 4.0 (github.com/IDLabMedia/tgif-dataset); the COCO originals CC BY 4.0.",
    citation="@inproceedings{mareen2024tgif,\n  title = {TGIF: Text-Guided Inpainting Forgery Dataset},\n  "
             "author = {Mareen, Hannes and Karageorgiou, Dimitrios and Van Wallendael, Glenn and "
             "Lambert, Peter "
             "and Papadopoulos, Symeon},\n  booktitle = {IEEE WIFS},\n  year = {2024}\n}",
    notes="Download the fake images, masks and metadata from the Nextcloud links of the repository's README "
          "(SD2 46 GB, SDXL 41 GB, Firefly 17.8 GB); the archives' internal folders are not documented, so "
          "arrange one sub-dataset as a ManiDataset folder (Tp/ images, Gt/ masks of the same names) or "
          "list it in an IMDL-BenCo JSON, then pass that path.",
))
register_preset(DatasetPreset(
    name="tgif2", title="TGIF2 (TGIF with FLUX.1 edits)",
    description="The TGIF extension with FLUX.1 (dev, fill-dev, schnell) inpainting and random masks, in the "
                "same repository (metadata-flux/, metadata-random/).",
    layout="mani", download="https://github.com/IDLabMedia/tgif-dataset",
    licence="CC BY-SA 4.0 (github.com/IDLabMedia/tgif-dataset); the COCO originals CC BY 4.0.",
    citation="See github.com/IDLabMedia/tgif-dataset for the TGIF2 reference; the TGIF paper: Mareen et al., "
             "TGIF: Text-Guided Inpainting Forgery Dataset, IEEE WIFS 2024.",
    notes="Arrange as for tgif (ManiDataset folder or IMDL-BenCo JSON). The per-generator test lists are the "
          "repository's metadata-flux/*_testing.csv files.",
))
register_preset(DatasetPreset(
    name="autosplice", title="AutoSplice",
    description="AutoSplice (Jia et al., CVPRW 2023): 3,621 images locally or globally edited by DALL-E 2 "
                "from text prompts and 2,273 authentic images (Visual News), in JPEG-100/90/75 versions.",
    layout="mani", download="https://github.com/shanface33/AutoSplice_Dataset",
    licence="Academic research only; free non-commercial use by researchers of educational institutes "
            "(the repository's README). Access by request form.",
    citation="@inproceedings{jia2023autosplice,\n  title = {AutoSplice: A Text-prompt Manipulated Image "
             "Dataset for Media Forensics},\n  author = {Jia, Shan and Huang, Mingzhen and Zhou, "
             "Zhou and Ju, "
             "Yan and Cai, Jialing and Lyu, Siwei},\n  booktitle = {CVPR Workshops},\n  year = {2023}\n}",
    notes="The download link comes by e-mail after the request form; arrange one JPEG version as a "
          "ManiDataset folder (Tp/ forged + authentic images, Gt/ masks) or an IMDL-BenCo JSON with "
          "\"Negative\" for the authentic images. JPEG-compressed masks are binarised at 127.5.",
))
