"""What a mini editor family's trained component is (torch-free, so editor listing stays light)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

#: Where the mini components' trained weights ship (package data).
WEIGHTS_DIR = Path(__file__).with_name("weights")


def weights_digest(folder: Path | None = None) -> str:
    """A short sha256 over the shipped component weights (names + bytes): mini data made with other
    weights is not reused from the cache."""
    digest = hashlib.sha256()
    for path in sorted((folder or WEIGHTS_DIR).glob("*.safetensors")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ComponentSpec:
    """What a family's component is: ``kind`` "vae" | "vq" | "glide", latent width, upsampler, seed."""

    family: str
    kind: str = "vae"
    latent_channels: int = 4
    upsampler: str = "nearest"
    seed: int = 0
    #: Std of the Gaussian residual added to the latent before decoding, relative to the latent's own
    #: per-channel std (seeded per edit): the stand-in for what a sampler leaves in the latent it hands
    #: the decoder, which the decoder renders with its own fingerprint.
    latent_noise: float = 0.5

    @property
    def backend(self) -> str:
        """The ``editor_backend`` string recorded in the metadata of every edit it makes."""
        what = {"vae": f"trained AutoencoderKL ({self.latent_channels} latent channels, {self.upsampler} "
                       "upsampling tail) round trip",
                "vq": "trained VQModel (MoVQ-like, 256 codes) round trip",
                "glide": "GLIDE-like pixel path: 4x down, trained UNet2DModel 4x upsampler"}[self.kind]
        residual = f" with a sampler-residual latent perturbation ({self.latent_noise:g} x latent std)" \
            if self.latent_noise else ""
        return f"mini stand-in: classical content (no diffusion step) + {what}{residual}"
