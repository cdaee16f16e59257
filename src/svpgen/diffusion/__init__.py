"""Phase 1: the paper's DDPM — U-Net, noise schedules and samplers, training, generation."""
