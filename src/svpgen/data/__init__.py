"""Data layer: class names, image preprocessing, the ParticleStore, splits, importers."""
