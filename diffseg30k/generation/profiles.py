"""Generation profiles: everything that differs between the paper's pipeline and the CPU stand-in.

A :class:`GenerationProfile` provides the real-base sources and loader, the AI-base captions, the
region proposer, the prompter, the quality scorer and the editors; the orchestration
(:mod:`diffseg30k.generation.pipeline`) asks its profile and never branches on the profile's name.

* ``paper``: user-supplied photos, Qwen2.5-VL + Grounding DINO + SAM, the real diffusers editors.
* ``mini``: scikit-image's bundled photos, shape/superpixel regions, template prompts, a pixel
  statistics quality filter, and stand-in editors (classical content + each family's *trained* tiny
  component, :mod:`diffseg30k.generation.standin`). The embedded default data of ``benchmark``.
* ``tiny``: ``mini``'s inputs with the real diffusers pipelines built from tiny *random* weights
  (tests of the diffusion code paths; its edits are noise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffseg30k.io import IMAGE_SUFFIXES, image_files

#: COCO-style captions for AI bases (written for this toolkit in the style of COCO captions).
CAPTIONS = (
    "A man riding a bicycle down a city street.", "Two dogs playing with a ball on the grass.",
    "A plate of pasta with tomatoes on a wooden table.", "A red double decker bus parked by the curb.",
    "A woman holding an umbrella in the rain.", "A cat sleeping on a sofa next to a pillow.",
    "A kitchen with a refrigerator and a stove.", "A group of people standing on a beach.",
    "A train traveling over a bridge near mountains.", "A bowl of fruit on a counter top.",
    "A child flying a kite in a park.", "A living room with a television and a couch.",
    "A giraffe standing next to a tree.", "A pizza with cheese and vegetables on a tray.",
    "A boat docked at a pier on a calm lake.", "A skateboarder doing a trick on a ramp.",
    "A stop sign at the corner of an empty road.", "An airplane flying in a clear blue sky.",
    "A desk with a laptop, a lamp and a cup of coffee.", "A horse grazing in a fenced field.",
)
#: Photos that ship inside scikit-image's wheel (no download). Licences (scikit-image's data
#: docstrings): public domain / CC0 except ``motorcycle_*`` (Middlebury 2014 stereo benchmark,
#: distributed with scikit-image under its BSD-3 licence with attribution to Scharstein et al.).
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "coins", "moon", "clock", "grass", "gravel", "brick", "motorcycle_left",
                  "motorcycle_right", "retina")

MINI_PROVENANCE = """## What this is: the DiffSeg30k *mini* stand-in (not the DiffSeg30k data)

Generated on a CPU by `diffseg30k generate --profile mini` (the DiffSeg30k toolkit's embedded default
data). It copies DiffSeg30k's layout and protocol -- real and AI bases, 1-3 edit turns by eight
labelled generators, exact per-pixel label maps, a quality filter -- but **no diffusion model runs**:

* real bases: crops/flips of 16 photos bundled with scikit-image (public domain / CC0; the two
  `motorcycle_*` views are from the Middlebury 2014 stereo benchmark, via scikit-image, BSD-3);
* edit content is classical: removals filled from the surroundings, attribute changes recoloured,
  additions pasted from another bundled photo and colour-harmonised; the prompts are recorded only;
* each generator's trace comes from a small *trained* stand-in of its family's component (an
  AutoencoderKL round trip with 4 or 16 latent channels and a family-specific upsampling tail, a
  VQModel for Kandinsky, a GLIDE-like 4x pixel upsampler; the autoencoder tails fine-tuned
  adversarially, L1 + patch-GAN, as real VAE decoders are), composited only inside the mask;
* no sampler runs: a seeded Gaussian residual (0.5x the latent's per-channel std; GLIDE: on its 4x-down
  image) stands in for what a sampler leaves in the latent, and the family's decoder
  renders it with its own fingerprint -- it shows as a fine woven texture on flat areas, so many edits
  *are* visible at a glance, unlike DiffSeg30k's;
  `turns[].editor_backend` says so per edit, `base_backend` per AI base;
* AI bases are bundled photos or procedural scenes re-synthesised through a family's component.

Use it to test code and to check that a detector can learn traces; never report it as DiffSeg30k.

## Licence

The photos' licences above; the generated images and masks: CC0.
"""


def split_revision(spec: str) -> tuple[str, str | None]:
    """``"org/model@<commit>"`` -> (repo id, revision); a local folder or a bare id has no revision."""
    repo, sep, revision = str(spec).rpartition("@")
    if not sep or not repo or Path(spec).exists():
        return str(spec), None
    return repo, revision


def photo_files(folder: str | Path) -> list[str]:
    """Image files under ``folder`` (sorted); a clear error when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: --source must be a folder of images")
    files = [str(p) for p in image_files(root)]
    if not files:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def load_file_base(path: str) -> Image.Image:
    from diffseg30k.io import normalize_image

    return normalize_image(path, name=path).image  # 16-bit, CMYK, EXIF orientation


class GenerationProfile:
    """The paper profile; subclasses replace the parts the CPU stand-in does differently."""

    name = "paper"
    size = 1024
    keep_loaded = False
    threads: int | None = None
    needs_source = True
    captions = CAPTIONS
    #: Written to ``OUT/PROVENANCE.md`` and carried into the dataset card by ``convert`` (None: nothing).
    provenance: str | None = None

    def sources(self, folder: str | Path | None, real_fraction: float) -> list[str]:
        """Real base sources: files under ``folder``, else the profile's bundled photos."""
        if real_fraction <= 0:
            return []
        if folder is None:
            raise ValueError(f"the {self.name} profile needs --source DIR with real photos "
                             "(or real_fraction=0)")
        return photo_files(folder)

    def load_base(self, source: str, seed: int, from_folder: bool) -> Image.Image:
        """A real base image for ``source`` (a file, or a bundled photo's name)."""
        return load_file_base(source)

    def editor(self, name: str, device: str = "cpu", dtype: Any = None, **options: Any) -> Any:
        from diffseg30k.generation.editors.registry import create_editor

        return create_editor(name, profile="paper", device=device, dtype=dtype, **options)

    def region_proposer(self, pool: Any) -> Any:
        from diffseg30k.generation.regions import GroundedSAMProposer

        cfg = pool.config
        detector, detector_rev = split_revision(cfg.detector)
        segmenter, segmenter_rev = split_revision(cfg.segmenter)
        return GroundedSAMProposer.from_pretrained(pool.shared_vlm(), detector, segmenter, device=pool.device,
                                                   detector_revision=detector_rev,
                                                   segmenter_revision=segmenter_rev)

    def prompter(self, pool: Any) -> Any:
        from diffseg30k.generation.prompts import VLMPromptWriter

        return VLMPromptWriter(pool.shared_vlm())

    def quality_scorer(self, pool: Any) -> Any:
        from diffseg30k.generation.quality import VLMQualityScorer

        return VLMQualityScorer(pool.shared_vlm(), pool.config.exemplar_images)


class MiniProfile(GenerationProfile):
    """CPU stand-in: bundled photos, cheap stages, trained tiny components (see the module doc)."""

    name = "mini"
    size = 128
    keep_loaded = True
    threads = 1
    needs_source = False
    photos = SKIMAGE_PHOTOS
    provenance = MINI_PROVENANCE

    def sources(self, folder: str | Path | None, real_fraction: float) -> list[str]:
        if real_fraction <= 0:
            return []
        return list(self.photos) if folder is None else photo_files(folder)

    @staticmethod
    def load_photo(name: str) -> Image.Image:
        """One of scikit-image's bundled photos as RGB."""
        import skimage.data

        if name not in SKIMAGE_PHOTOS:
            raise ValueError(f"unknown mini photo {name!r}; available: {', '.join(SKIMAGE_PHOTOS)}")
        if name.startswith("motorcycle_"):
            pixels = skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1]
        else:
            pixels = getattr(skimage.data, name)()
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8:
            pixels = (255 * (pixels.astype(np.float64) / max(float(pixels.max()), 1.0))).astype(np.uint8)
        return Image.fromarray(pixels).convert("RGB")

    def varied_photo(self, name: str, rng: np.random.Generator) -> Image.Image:
        """A photo with a random square-ish crop (50-100 % of the short side) and a random flip."""
        image = self.load_photo(name)
        width, height = image.size
        side = int(min(width, height) * rng.uniform(0.5, 1.0))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        image = image.crop((left, top, left + side, top + side))
        return image.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image

    def random_photo(self, rng: np.random.Generator) -> Image.Image:
        return self.varied_photo(self.photos[int(rng.integers(len(self.photos)))], rng)

    def load_base(self, source: str, seed: int, from_folder: bool) -> Image.Image:
        if from_folder:
            return load_file_base(source)
        return self.varied_photo(source, np.random.default_rng(seed))

    def editor(self, name: str, device: str = "cpu", dtype: Any = None, **options: Any) -> Any:
        from diffseg30k.generation.editors.registry import get_editor_class
        from diffseg30k.generation.standin import StandInEditor

        return StandInEditor(get_editor_class(name), self.random_photo, device=device, **options)

    def region_proposer(self, pool: Any) -> Any:
        from diffseg30k.generation.regions import ShapeProposer

        return ShapeProposer()

    def prompter(self, pool: Any) -> Any:
        from diffseg30k.generation.prompts import TemplatePromptWriter

        return TemplatePromptWriter()

    def quality_scorer(self, pool: Any) -> Any:
        from diffseg30k.generation.quality import StatisticsQualityScorer

        return StatisticsQualityScorer()


class TinyProfile(MiniProfile):
    """``mini``'s inputs with the real diffusers editors built from tiny random weights (tests)."""

    name = "tiny"

    def editor(self, name: str, device: str = "cpu", dtype: Any = None, **options: Any) -> Any:
        from diffseg30k.generation.editors.registry import create_editor

        return create_editor(name, profile="mini", device=device, dtype=dtype, **options)


MINI = MiniProfile()
PROFILES: dict[str, GenerationProfile] = {p.name: p for p in (GenerationProfile(), MINI, TinyProfile())}


def get_profile(name: str) -> GenerationProfile:
    """The profile registered as ``name``."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {tuple(PROFILES)}") from None
