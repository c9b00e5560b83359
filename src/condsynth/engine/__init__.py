"""The training engine shared by every method: ``train(cfg)`` and checkpoints."""
