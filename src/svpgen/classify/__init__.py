"""Phase 2: particle classifiers (timm ResNets), training with imbalance strategies, inference."""
