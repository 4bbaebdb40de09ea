"""Training: self-blended samples from cached real faces, the SAM training loop, checkpoints."""
