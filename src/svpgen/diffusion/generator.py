"""A trained per-class diffusion model as one object, like a diffusers pipeline:
``.unet`` (the denoising network, EMA weights: the U-Net, or the ``pca-mlp`` latent
network of :mod:`svpgen.diffusion.latent`), ``.scheduler`` (its recommended
sampler), ``.sample()``, and ``from_pretrained`` / ``save_pretrained`` for the artefact
(``model.safetensors`` + ``config.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from svpgen.checkpoint import read_artefact, save_artefact
from svpgen.device import resolve_device
from svpgen.diffusion.config import DiffusionConfig
from svpgen.diffusion.schedule import sampler as make_sampler
from svpgen.diffusion.unet import UNet
from svpgen.errors import SvpgenError

KIND = "svpgen-diffusion"


def build_network(config: DiffusionConfig) -> torch.nn.Module:
    """The untrained denoising network ``config`` asks for (a ``pca-mlp`` still needs ``fit``)."""
    if config.network == "pca-mlp":
        from svpgen.diffusion.latent import LatentDenoiser

        return LatentDenoiser(config.latent, config.schedule)
    return UNet(config.unet)


class Generator:
    """A trained DDPM of one particle class.

    ``unet(x_t, t) → ε̂`` on 1×64×64 images in [-1, 1]; ``config`` holds the architecture,
    the noise schedule and the recommended sampler; ``metadata`` what training recorded
    (epochs, images, the training store).
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        config: DiffusionConfig,
        label: str,
        metadata: dict | None = None,
        device: str = "cpu",
    ):
        self.unet = unet.to(device).eval()
        self.config, self.label, self.device = config, label, device
        self.metadata: dict = dict(metadata or {})
        self.path: Path | None = None

    @property
    def scheduler(self):
        """The recommended sampler as a configured diffusers scheduler (timesteps set)."""
        return make_sampler(
            self.config.sampler,
            self.config.schedule,
            self.config.sampler_steps,
            self.config.clip_sample,
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto") -> "Generator":
        """Load a diffusion model directory written by :meth:`save_pretrained`."""
        path = Path(path)
        info, weights = read_artefact(path, KIND, "diffusion")
        config = DiffusionConfig.from_dict(info["diffusion"])
        unet = build_network(config)
        unet.load_state_dict(weights)
        metadata = {k: v for k, v in info.items() if k not in ("kind", "label", "diffusion")}
        generator = cls(unet, config, info["label"], metadata, resolve_device(device))
        generator.path = path
        return generator

    load = from_pretrained

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (weights first, atomically)."""
        from svpgen import __version__

        config = {
            "kind": KIND,
            "label": self.label,
            "diffusion": self.config.to_dict(),
            "package_version": __version__,
            **{k: v for k, v in self.metadata.items() if k != "package_version"},
        }
        save_artefact(Path(path), self.unet.state_dict(), config)
        return Path(path)

    def sample(
        self,
        n: int,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        """``n`` generated images, uint8 (n, 64, 64); deterministic per seed and batch size.
        Without ``sampler``/``steps`` the model's recommended sampler is used."""
        from svpgen.diffusion.sample import sample_images

        sampler, steps = self.sampling(sampler, steps)
        images, _ = sample_images(
            self.unet, self.config, n, sampler, steps, seed, batch_size, self.device, progress
        )
        return images

    def sampling(
        self, sampler: str | None = None, steps: int | None = None
    ) -> tuple[str, int | None]:
        """(sampler, steps) to use: the ones asked for, else the model's recommendation.
        A sampler that does not fit the model's objective is refused."""
        from svpgen.diffusion.config import SAMPLERS_FOR

        if sampler is None:
            return self.config.sampler, steps if steps is not None else self.config.sampler_steps
        allowed = SAMPLERS_FOR[self.config.schedule.objective]
        if sampler not in allowed:
            raise SvpgenError(
                f"sampler {sampler!r} does not fit this {self.config.schedule.objective} model; "
                f"choose from {', '.join(allowed)}"
            )
        return sampler, steps

    def training_images(self) -> np.ndarray | None:
        """The real images this model was trained on (from the store training recorded);
        None for a model that records none (an imported one)."""
        from svpgen.diffusion.train import load_training_images

        store = self.metadata.get("store")
        if not store:
            return None
        if not Path(store).exists():
            raise SvpgenError(
                f"{self.path or 'this model'}: its training store {store} is not available"
            )
        return load_training_images(
            Path(store), self.label, self.config.max_images, self.config.seed
        )

    def __repr__(self) -> str:
        path = str(self.path) if self.path else None
        return f"Generator(label={self.label!r}, sampler={self.config.sampler!r}, path={path!r})"
