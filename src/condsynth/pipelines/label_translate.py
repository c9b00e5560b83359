"""Label maps (+ instance maps) to images: pix2pixHD's inference.

    pipe = LabelTranslationPipeline.from_pretrained("exports/hd")         # export, run or checkpoint
    out = pipe("labels/0001.png", instances="inst/0001.png")              # a random cluster per instance
    out = pipe(labels, instances=inst, style={"building": 3})             # a chosen cluster for a class
    out = pipe(labels, instances=inst, style_from="photo.png")            # features encoded from a photo
    pipe.cluster_features()        # K-means over the training set's instance features (then save_pretrained)

Label maps are read with :func:`~condsynth.io.images.read_label_map` (class ids exactly as stored:
palette indices, 8/16-bit grey), instance maps with :func:`~condsynth.io.images.read_instance_map`
(16-bit ids, Cityscapes' ``class * 1000 + k``). A style photo belongs to the same label and instance
maps (its instances' features are what E pools). Maps whose sides are not a multiple of the
network's stride are padded (reflected ids) and the output cropped back.

Task protocol: the method has ``translate(labels, inst=None, style=None, seed=0)``, ``instances``
(whether it takes instance maps) and ``cluster_features(dataset=None)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_files
from condsynth.io.images import (read_image, read_instance_map, read_label_map, tensor_to_uint8,
                                 to_rgb_uint8, uint8_to_tensor)
from condsynth.pipelines.translate import TranslationOutput, TranslationPipeline, pad_to_multiple, prepare_outputs


def _ids(value, reader) -> np.ndarray:
    """A path (read exactly) or an ``H x W`` integer array."""
    arr = reader(value) if isinstance(value, (str, Path)) else np.asarray(value)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.dtype.kind not in "biu":
        raise UserError(f"a label or instance map is an H x W array of integer ids, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _pad_ids(arr: np.ndarray, multiple: int) -> np.ndarray:
    h, w = arr.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return arr
    return np.pad(arr, ((0, ph), (0, pw)), mode="reflect" if (ph < h and pw < w) else "edge")


def parse_style(items: Iterable[str]) -> dict[str, int]:
    """``["building=3", "5=0"]`` -> ``{"building": 3, "5": 0}`` (class names or ids; checked by the model)."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, index = str(item).partition("=")
        if not sep or not name or not index.strip().isdigit():
            raise UserError(f"--style {item!r}: expected CLASS=INDEX, e.g. building=3")
        out[name.strip()] = int(index)
    return out


class LabelTranslationPipeline(TranslationPipeline):
    def check_method(self, method) -> None:
        if not callable(getattr(method, "translate", None)) or not hasattr(method, "encode_input"):
            raise UserError(f"{self.source}: a '{method.name}' model does not translate label maps")
        nets = [getattr(method, n, None) for n in method.inference_networks]
        self.stride = max(int(getattr(n, "stride", 1)) for n in nets if n is not None)
        self.label_nc = int(self.config.model.label_nc)
        self.in_channels = int(getattr(self.config.model, "in_channels", 3))
        self.instances = bool(method.instances)
        self.two_way = False

    @property
    def has_encoder(self) -> bool:
        return getattr(self.method, "E", None) is not None

    def cluster_features(self, dataset=None) -> dict[str, int]:
        """K-means over the instance features of ``dataset`` (default: the training split of the run's
        config); kept in the ``clusters`` component that :meth:`save_pretrained` writes. Returns clusters
        per class."""
        return self.method.cluster_features(dataset)

    def save_pretrained(self, out, half: bool = False, overwrite: bool = False, part: str | None = None) -> Path:
        from condsynth.engine.checkpoint import save_pipeline
        extra = {"feature_clusters": self.method.cluster_summary()} if self.has_encoder else None
        return save_pipeline(self.method, self.config, out, half=half, source=self.source, overwrite=overwrite,
                             extra=extra, part=part)

    def _labels(self, labels) -> torch.Tensor:
        if self.label_nc == 0:      # an RGB input image (label_nc 0)
            return uint8_to_tensor(to_rgb_uint8(labels))[None]
        return torch.from_numpy(_ids(labels, read_label_map))[None]

    @torch.no_grad()
    def __call__(self, labels, instances=None, style: dict | None = None, style_from=None,
                 seed: int | None = 0, direction: str | None = None, tile: int | None = None) -> TranslationOutput:
        """Translate one label map (path or ``H x W`` ids; an image when label_nc is 0). ``instances``: its
        instance map; ``style``: ``{class name or id: cluster index}``; ``style_from``: a photo of the same
        maps whose features to use; ``seed``: the random clusters of the classes not in ``style``."""
        self._method_args(direction)
        tile_args = self._tile_args(tile)
        if style and style_from is not None:
            raise UserError("give either a style (class=cluster) or a style photo, not both")
        if instances is not None and not self.instances:
            raise UserError(f"{self.source}: this model was trained without instance maps (data.instances "
                            f"false); leave out --instances")
        x = self._labels(labels)
        h, w = x.shape[-2:]
        if self.label_nc == 0:
            x, _ = pad_to_multiple(x, self.stride)
        else:
            x = torch.from_numpy(_pad_ids(x[0].numpy(), self.stride))[None]
        inst = None
        if instances is not None:
            arr = _ids(instances, read_instance_map)
            if arr.shape != (h, w):
                raise UserError(f"{instances if isinstance(instances, (str, Path)) else 'instance map'}: size "
                                f"{arr.shape[1]}x{arr.shape[0]} differs from its label map {w}x{h}")
            inst = torch.from_numpy(_pad_ids(arr, self.stride))[None].to(self.device)
        chosen = style
        if style_from is not None:
            if not self.has_encoder:
                raise UserError(f"{self.source}: this model has no feature encoder; a style photo has no effect")
            photo = uint8_to_tensor(to_rgb_uint8(style_from))[None]
            if photo.shape[-2:] != (h, w):
                raise UserError(f"{style_from if isinstance(style_from, (str, Path)) else 'style photo'}: size "
                                f"{photo.shape[-1]}x{photo.shape[-2]} differs from its label map {w}x{h}")
            chosen = pad_to_multiple(photo, self.stride)[0].to(self.device)
        y = self.method.translate(x.to(self.device), inst, style=chosen, seed=seed, **tile_args)[..., :h, :w]
        return TranslationOutput(tensor_to_uint8(y[0]))

    def translate_files(self, files: list[Path], out_dir, seed: int = 0, overwrite: bool = False,
                        inputs: Iterable = (), direction: str | None = None, instances: str | Path | None = None,
                        style: dict | None = None, style_from: str | Path | None = None,
                        tile: int | None = None) -> list[Path]:
        """Translate label-map ``files`` into ``out_dir`` (PNGs named after them; all appear together).
        ``instances``: a folder of instance maps matched by name; ``style_from``: one photo, or a folder of
        photos matched by name."""
        from condsynth.data.check import match_by_stem
        self._method_args(direction)
        self._tile_args(tile)
        if style:
            self.method.check_style(style)           # a bad cluster index fails before any file is read
        inst_files = match_by_stem(files, Path(instances), "instance map",
                                                prefer="_gtFine_instanceIds") if instances is not None else {}
        if self.instances and instances is None:
            raise UserError(f"{self.source}: this model was trained with instance maps: give --instances DIR")
        photos: dict = {}
        if style_from is not None:
            p = Path(style_from)
            photos = (match_by_stem(files, p, "style photo", prefer="_leftImg8bit") if p.is_dir()
                      else {f: p for f in files})
        target, names = prepare_outputs(files, out_dir, inputs, overwrite,
                                        extra_inputs=[*inst_files.values(), *photos.values()])
        with atomic_files(target) as stage:
            for i, (f, name) in enumerate(zip(files, names)):
                labels = read_image(f) if self.label_nc == 0 else read_label_map(f)
                self(labels, instances=inst_files.get(f), style=style, style_from=photos.get(f),
                     seed=seed + i, tile=tile).save(stage / name)
        return [Path(out_dir) / name for name in names]


__all__ = ["LabelTranslationPipeline", "parse_style"]
