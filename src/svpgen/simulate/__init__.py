"""The FIM particle simulator: the embedded default dataset (spec: shared/specs/simulator.md)."""

from svpgen.simulate.engine import SimConfig, simulate

__all__ = ["SimConfig", "simulate"]
