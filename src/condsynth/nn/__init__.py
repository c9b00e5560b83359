"""Shared network building blocks: conv/norm/act, U-Net and ResNet generators, PatchGAN discriminators, attention, feature networks."""
