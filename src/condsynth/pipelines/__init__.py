"""Inference for end users: load a checkpoint, take user inputs, return outputs."""
