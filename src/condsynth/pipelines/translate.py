"""Image-to-image translation for end users, at any image size.

    pipe = TranslationPipeline.from_pretrained("pix2pix-scenes64")   # export, run, checkpoint or bundled name
    out = pipe(image)                 # path, H x W x C uint8 array or C x H x W tensor in [0, 1]
    out.image                         # H x W x C uint8, the input's size
    out.save("translated.png")

A U-Net with d downsamplings needs sides divisible by 2^d: the input is padded (reflect, or
replicate for tiny images) up to the next multiple, translated, and cropped back.

Task protocol (checked at load): the method has ``translate(x) -> y`` on ``N x C x H x W`` tensors
in [-1, 1], and its translating network a ``stride`` (2^d). A two-way method (CycleGAN) takes
``translate(x, direction="AtoB" | "BtoA")``; ``pipe(image, direction="BtoA")`` passes it through, and
a one-way method (pix2pix) refuses ``BtoA``. A ``BtoA`` input has the model's ``out_channels``.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_files
from condsynth.io.images import (IMAGE_EXTENSIONS, list_images, luma, probe_image, read_image, save_image,
                                 tensor_to_uint8, to_rgb_uint8, uint8_to_tensor)
from condsynth.io.outputs import check_new_files, check_output
from condsynth.pipelines.base import Pipeline, pick_device, seeded


def collect_inputs(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files.extend(list_images(p))
        elif os.path.lexists(p):        # read_image names what is wrong: a loop, a FIFO, ...
            files.append(p)
        else:
            raise UserError(f"{p}: file not found")
    return files


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def prepare_outputs(files: list[Path], out_dir, inputs: Iterable = (), overwrite: bool = False,
                    extra_inputs: Iterable[Path] = ()) -> tuple[Path, list[str]]:
    """Check every input's header and ``out_dir`` against the output policy (:mod:`condsynth.io.outputs`)
    before anything is decoded; returns the folder to write and one PNG name per file (its stem, made
    unique). ``inputs``: what else the command reads (the checkpoint); ``extra_inputs``: files read beside
    each input (instance maps, style photos), whose folders, like the inputs', may hold the output."""
    extra_inputs = list(extra_inputs)
    sizes = [probe_image(f) for f in files]
    names, used = [], set()
    for f in files:
        name = f.stem
        while name in used:
            name += "_"
        used.add(name)
        names.append(f"{name}.png")
    target = check_output(out_dir, kind="folder", merge=True, inputs=[*files, *extra_inputs, *inputs],
                          shallow_inputs={f.parent for f in [*files, *extra_inputs]},  # a sub-folder of theirs is fine
                          need_bytes=sum(w * h for w, h in sizes) // 4)                # PNGs rarely go below 2 bits/px
    check_new_files(target, names, inputs=files, overwrite=overwrite)
    return target, names


@dataclass
class TranslationOutput:
    image: np.ndarray               # H x W x C uint8

    def save(self, path) -> Path:
        return save_image(path, self.image)


class TranslationPipeline(Pipeline):
    def check_method(self, method) -> None:
        if not callable(getattr(method, "translate", None)):
            raise UserError(f"{self.source}: a '{method.name}' model is not an image-translation model")
        net = getattr(method, method.inference_networks[0]) if method.inference_networks else None
        self.stride = int(getattr(net, "stride", 1))
        self.in_channels = int(getattr(self.config.model, "in_channels", 3))
        self.two_way = "direction" in inspect.signature(method.translate).parameters

    def _method_args(self, direction: str | None) -> dict:
        """``translate``'s keyword arguments for ``direction`` (None: the method's default, A to B
        or the one direction a partial export holds)."""
        if direction is None:
            return {}
        if direction not in ("AtoB", "BtoA"):
            raise UserError(f"direction must be AtoB or BtoA, got {direction!r}")
        if self.two_way:
            return {"direction": direction}
        if direction == "BtoA":
            raise UserError(f"{self.source}: a '{self.method.name}' model translates one way only; "
                            f"--direction BtoA needs a two-way model such as cyclegan")
        return {}

    def channels(self, direction: str | None = None) -> int:
        """Channels of the input image for ``direction`` (B's, i.e. ``out_channels``, for BtoA)."""
        if direction is None and callable(getattr(self.method, "default_direction", None)):
            direction = self.method.default_direction()
        if direction == "BtoA":
            return int(getattr(self.config.model, "out_channels", 3))
        return self.in_channels

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", use_ema: bool = True) -> TranslationPipeline:
        """Older name of :meth:`from_pretrained`."""
        return cls.from_pretrained(path, device=device, use_ema=use_ema)

    def _prepare(self, image, channels: int) -> np.ndarray:
        """Any image input (path, PIL, array, tensor; see ``io.images.to_rgb_uint8``) with the
        channels the network takes; grey for a 1-channel network is BT.601 luma."""
        if channels == 1 and isinstance(image, (str, Path)):
            return read_image(image, mode="L")
        rgb = to_rgb_uint8(image)
        return luma(rgb) if channels == 1 else rgb

    def _tile_args(self, tile: int | None) -> dict:
        """``translate``'s ``tile`` argument: methods opt in to tiled inference (nn/tiled.py) by taking it."""
        if tile is None:
            return {}
        if int(tile) < 1:
            raise UserError(f"--tile must be a positive number of pixels, got {tile}")
        if "tile" not in inspect.signature(self.method.translate).parameters:
            raise UserError(f"{self.source}: a '{self.method.name}' model does not support tiled inference (--tile)")
        return {"tile": int(tile)}

    @torch.no_grad()
    def __call__(self, image, seed: int | None = 0, direction: str | None = None,
                 tile: int | None = None) -> TranslationOutput:
        """Translate one image; ``seed`` drives the generator's dropout noise (None: the global RNG);
        ``direction`` (``AtoB``/``BtoA``) picks the mapping of a two-way model (None: A to B);
        ``tile``: run the network layer by layer on ``tile x tile`` tiles (same output, less
        memory; condsynth.nn.tiled), for models whose ``translate`` takes ``tile``."""
        kwargs = {**self._method_args(direction), **self._tile_args(tile)}
        x = uint8_to_tensor(self._prepare(image, self.channels(direction)))[None].to(self.device)
        x, (h, w) = pad_to_multiple(x, self.stride)
        with seeded(seed, self.device):
            y = self.method.translate(x, **kwargs)[..., :h, :w]
        return TranslationOutput(tensor_to_uint8(y[0]))

    def translate_files(self, files: list[Path], out_dir: str | Path, seed: int = 0, overwrite: bool = False,
                        inputs: Iterable[str | Path] = (), direction: str | None = None,
                        tile: int | None = None) -> list[Path]:
        """Translate ``files`` into ``out_dir`` as PNGs named after them, one image in memory at a time.

        Every input's header is checked before the first is decoded, and ``out_dir`` against the
        output policy (:mod:`condsynth.io.outputs`; ``inputs``: what else the command reads, e.g.
        the checkpoint). The outputs appear in ``out_dir`` together once all are written, so a
        failure leaves nothing there; an existing output is replaced only with ``overwrite``.
        """
        self._method_args(direction)           # a wrong direction or tile fails before any file is read
        self._tile_args(tile)
        mode = "L" if self.channels(direction) == 1 else "RGB"
        target, names = prepare_outputs(files, out_dir, inputs, overwrite)
        with atomic_files(target) as stage:
            for i, (f, name) in enumerate(zip(files, names)):
                self(read_image(f, mode=mode), seed=seed + i, direction=direction, tile=tile).save(stage / name)
        return [Path(out_dir) / name for name in names]


__all__ = ["IMAGE_EXTENSIONS", "TranslationOutput", "TranslationPipeline", "collect_inputs", "pad_to_multiple",
           "pick_device", "prepare_outputs"]
