"""Training: the Trainer, per-group optimizers, device/precision setup and run launching."""
