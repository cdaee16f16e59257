"""svpgen: sub-visible particle classification in flow imaging microscopy, with
diffusion-model synthesis of the scarce classes (Ozbulak et al. 2025).

The public Python interface::

    from svpgen import Generator, Classifier, ParticleStore
    g = Generator.from_pretrained("runs/x/diffusion/silicone_oil")
    imgs = g.sample(256, seed=0)                    # uint8 (256, 64, 64)
    c = Classifier.from_pretrained("runs/x/classifier")
    proba = c.predict_proba(imgs)                   # float (256, n_classes)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svpgen")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "Generator", "Classifier", "ParticleStore"]

_LAZY = {
    "Generator": "svpgen.diffusion.generator",
    "Classifier": "svpgen.classify.classifier",
    "ParticleStore": "svpgen.data.store",
}


def __getattr__(name: str):
    # The models pull in torch; import them lazily so `svpgen info` stays fast.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(name)
