"""Synthetic worlds: procedural datasets generated from a seed, in the on-disk layout of the real
dataset they stand in for, with exact ground truth. They serve tests, benchmarks, tutorials and demo
checkpoints; they never replace a real dataset reader.

``WORLDS`` maps a world's name to the function that writes it as a dataset folder
(``write(out, n, *, size, seed, val_fraction, test_fraction, layout, overwrite, progress) -> meta``);
``condsynth data synth <world>`` lists and calls them.
"""

from condsynth.data.synth import scenes
from condsynth.data.synth.scenes import CLASSES, PALETTE, Scene, render_scene

WORLDS = {
    scenes.WORLD_NAME: scenes.write_dataset,
}

__all__ = ["CLASSES", "PALETTE", "Scene", "WORLDS", "render_scene", "scenes"]
