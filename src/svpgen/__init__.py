"""svpgen: sub-visible particle classification in flow imaging microscopy, with
diffusion-model synthesis of the scarce classes (Ozbulak et al. 2025)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svpgen")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "Generator", "Classifier"]


def __getattr__(name: str):
    # The public API pulls in torch; import it lazily so `svpgen info` stays fast.
    if name in ("Generator", "Classifier"):
        from svpgen import api

        return getattr(api, name)
    raise AttributeError(name)
