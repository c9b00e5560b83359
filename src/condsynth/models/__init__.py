"""One file per method (a package for a large one, such as painting). The registry maps a config's
``method:`` name to its module, imported lazily so that ``condsynth --help`` does not import every
method (and its optional dependencies)."""

from __future__ import annotations

import importlib

from condsynth.errors import ConfigError

# method name -> "module:ClassName"
REGISTRY: dict[str, str] = {
    "pix2pix": "condsynth.models.pix2pix:Pix2Pix",
    "template": "condsynth.models.template:TemplateMethod",
    "cyclegan": "condsynth.models.cyclegan:CycleGAN",
    "pix2pixhd": "condsynth.models.pix2pixhd:Pix2PixHD",
    "painting_renderer": "condsynth.models.painting.renderer:RendererMethod",
    "painting_agent": "condsynth.models.painting.agent:PaintingAgent",
    "segmenter": "condsynth.models.segmenter:Segmenter",
    "damsm": "condsynth.models.damsm:DAMSM",
    "face_probe": "condsynth.models.face_probe:FaceProbe",
    "lipreader": "condsynth.models.lipreader:LipReader",
    "ldcgan_landmarks": "condsynth.models.ldcgan.landmarks:LandmarkPredictorMethod",
    "ldcgan": "condsynth.models.ldcgan.ldcgan:LDcGAN",
    "avwnet_atnet": "condsynth.models.avwnet.atnet:ATNetMethod",
    "avwnet": "condsynth.models.avwnet.avwnet:AVWnet",
    "hfgan": "condsynth.models.text_to_image.hfgan:HfGAN",
    "stacked_t2i": "condsynth.models.text_to_image.stacked:StackedT2I",
}


def register(name: str, target: str) -> None:
    REGISTRY[name] = target


def get_method_class(name: str):
    if name not in REGISTRY:
        raise ConfigError(f"unknown method '{name}' (available: {', '.join(sorted(REGISTRY))})")
    module_name, cls_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)
