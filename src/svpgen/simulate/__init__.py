"""The FIM particle simulator: the embedded default dataset (README, "The simulator")."""

from svpgen.simulate.engine import SimConfig, simulate

__all__ = ["SimConfig", "simulate"]
