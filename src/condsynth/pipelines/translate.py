"""Image-to-image translation for end users, at any image size.

    pipe = TranslationPipeline.from_checkpoint("runs/p2p")      # or a bundled name
    out = pipe(image_uint8)                                      # H x W x 3 uint8 in, same size out

A U-Net with d downsamplings needs sides divisible by 2^d: the input is padded (reflect, or
replicate for tiny images) up to the next multiple, translated, and cropped back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.config import check_device
from condsynth.engine.checkpoint import load_for_inference
from condsynth.errors import UserError
from condsynth.io.atomic import atomic_files
from condsynth.io.images import (IMAGE_EXTENSIONS, list_images, probe_image, read_image, save_image, tensor_to_uint8,
                                 uint8_to_tensor)
from condsynth.io.outputs import check_new_files, check_output


def pick_device(name: str) -> torch.device:
    return check_device(name, "--device")


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


class TranslationPipeline:
    def __init__(self, method, config, device: torch.device):
        self.method = method
        self.config = config
        self.device = device
        method.prepare_for_inference()
        self.net = getattr(method, method.inference_network)
        self.stride = getattr(self.net, "stride", 1)
        self.in_channels = getattr(config.model, "in_channels", 3)

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", use_ema: bool = True) -> "TranslationPipeline":
        dev = pick_device(device)
        method, cfg, _ = load_for_inference(path, use_ema=use_ema, device=dev)
        if not hasattr(method, "translate"):
            raise UserError(f"{path}: a '{cfg.method}' checkpoint is not an image-translation model")
        return cls(method, cfg, dev)

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = image[..., None]
        if self.in_channels == 1 and image.shape[2] == 3:
            image = np.asarray(image.mean(axis=2, keepdims=True).round(), np.uint8)
        elif self.in_channels == 3 and image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        x = uint8_to_tensor(image)[None].to(self.device)
        x, (h, w) = pad_to_multiple(x, self.stride)
        y = self.method.translate(x)[..., :h, :w]
        return tensor_to_uint8(y[0])

    def translate_files(self, files: list[Path], out_dir: str | Path, seed: int = 0, overwrite: bool = False,
                        inputs: Iterable[str | Path] = ()) -> list[Path]:
        """Translate ``files`` into ``out_dir`` as PNGs named after them, one image in memory at a time.

        Every input's header is checked before the first is decoded, and ``out_dir`` against the
        output policy (:mod:`condsynth.io.outputs`; ``inputs``: what else the command reads, e.g.
        the checkpoint). The outputs appear in ``out_dir`` together once all are written, so a
        failure leaves nothing there; an existing output is replaced only with ``overwrite``.
        """
        mode = "L" if self.in_channels == 1 else "RGB"
        sizes = [probe_image(f) for f in files]
        names, used = [], set()
        for f in files:
            name = f.stem
            while name in used:
                name += "_"
            used.add(name)
            names.append(f"{name}.png")
        target = check_output(out_dir, kind="folder", merge=True, inputs=[*files, *inputs],
                              shallow_inputs={f.parent for f in files},   # a sub-folder of theirs is fine
                              need_bytes=sum(w * h for w, h in sizes) // 4)  # PNGs rarely go below 2 bits/px
        check_new_files(target, names, inputs=files, overwrite=overwrite)
        out_dir = Path(out_dir)
        torch.manual_seed(seed)
        with atomic_files(target) as stage:
            for f, name in zip(files, names):
                save_image(stage / name, self(read_image(f, mode=mode)))
        return [out_dir / name for name in names]


__all__ = ["IMAGE_EXTENSIONS", "TranslationPipeline", "collect_inputs", "pad_to_multiple"]
