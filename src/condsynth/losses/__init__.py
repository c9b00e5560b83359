"""Losses shared by the methods: adversarial, reconstruction, perceptual, feature matching."""
