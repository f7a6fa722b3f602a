"""Training classes with custom ``compute_loss`` / ``train_step`` and callbacks."""
