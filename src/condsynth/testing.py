"""Test helpers for methods: tiny configs, a method built as the engine builds it, a fake step context.

    from condsynth import testing
    raw = testing.tiny_config("pix2pix", tmp_path)           # a config dict that trains in a second
    method = testing.build_method(raw)                        # __init__ + setup_training + frozen parts
    ctx = testing.fake_context(method)                        # plain backward / step, no DDP
    logs = method.training_step(batch, ctx)

``tiny_config`` knows every method of the registry; a new method adds its entry to ``TINY``
(``tests/test_contract.py`` fails for a registered method without one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable

import torch

from condsynth.engine.checkpoint import load_frozen_parts
from condsynth.engine.config import TrainConfig, build_experiment_config
from condsynth.models import get_method_class
from condsynth.models.base import StepContext

TRAIN_TINY = {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "keep_checkpoints": 3, "log_every": 1,
              "image_every": 0, "progress": False, "threads": 1, "seed": 5}


def scenes_dataset(workdir: Path, size: int = 16, n: int = 12) -> Path:
    """A small scenes dataset in pix2pix's AB layout (written once per folder)."""
    from condsynth.data.synth import scenes

    out = Path(workdir) / f"scenes{size}"
    if not (out / "train").is_dir():
        scenes.write_dataset(out, n, size=size, seed=3, val_fraction=1 / 6, test_fraction=1 / 6, progress=False)
    return out


def scenes_ids_dataset(workdir: Path, size: int = 16, n: int = 12) -> Path:
    """A small scenes dataset in the folders layout with class-id label maps (``--class-ids``), written once."""
    from condsynth.data.synth import scenes

    out = Path(workdir) / f"scenes{size}-ids"
    if not (out / "train").is_dir():
        scenes.write_dataset(out, n, size=size, seed=4, val_fraction=1 / 6, test_fraction=1 / 6, layout="folders",
                             class_ids=True, progress=False)
    return out


def _segmenter(workdir: Path) -> dict:
    return {"method": "segmenter", "model": {"ngf": 4, "num_downs": 2},
            "data": {"root": str(scenes_ids_dataset(workdir)), "crop_size": 16}}


def _paired(method: str, model: dict) -> Callable[[Path], dict]:
    def make(workdir: Path) -> dict:
        return {"method": method, "model": dict(model),
                "data": {"root": str(scenes_dataset(workdir)), "load_size": 18, "crop_size": 16}}
    return make


def unpaired_scenes(out: str | Path, n_train: int, n_test: int, size: int = 16, seed: int = 0) -> Path:
    """CycleGAN's layout from the scenes world, written once (``scenes.write_unpaired``, labels-photos):
    trainA = colour label maps of seed ``seed``, trainB = photos of seed ``seed + 1`` (disjoint scenes, so
    unpaired), testA/testB = label maps and their own photos of seed ``seed + 2`` (counterparts by name)."""
    from condsynth.data.synth import scenes

    out = Path(out)
    if not (out / "trainA").is_dir():
        scenes.write_unpaired(out, "labels-photos", n_train, n_test, size=size, seed=seed, overwrite=True,
                              progress=False)
    return out


def _unpaired(method: str, model: dict) -> Callable[[Path], dict]:
    def make(workdir: Path) -> dict:
        root = unpaired_scenes(Path(workdir) / "unpaired16", n_train=4, n_test=2, seed=10)
        return {"method": method, "model": dict(model),
                "data": {"root": str(root), "load_size": 18, "crop_size": 16, "interp_a": "nearest"}}
    return make


def label_scenes(workdir: Path, size: tuple[int, int] = (16, 32), n: int = 8) -> Path:
    """A small 2:1 scenes dataset with class-id label maps and Cityscapes-style instance maps
    (``condsynth data synth scenes --layout folders --class-ids --instances``), written once per folder."""
    from condsynth.data.synth import scenes

    out = Path(workdir) / f"label-scenes{size[0]}x{size[1]}"
    if not (out / "train").is_dir():
        scenes.write_dataset(out, n, size=size, seed=4, val_fraction=1 / 4, test_fraction=0, layout="folders",
                             class_ids=True, instances=True, progress=False)
    return out


def _pix2pixhd(workdir: Path) -> dict:
    from condsynth.data.synth.scenes import CLASSES

    model = {"label_nc": len(CLASSES), "class_names": list(CLASSES), "ngf": 4, "n_down_global": 2,
             "n_blocks_global": 1, "n_blocks_local": 1, "nef": 2, "n_down_encoder": 2, "ndf": 4, "num_d": 2,
             "d_layers": 1, "lambda_vgg": 0.0, "n_clusters": 3}
    return {"method": "pix2pixhd", "model": model,
            "data": {"root": str(label_scenes(workdir)), "label_a": True, "instances": True,
                     "load_size": [16, 32], "crop_size": [16, 32]}}


def one_step_run(run: Path, raw: dict) -> Path:
    """``raw`` trained for one engine step into ``run``, once (a frozen part for another tiny method)."""
    from condsynth.engine.trainer import train

    if not (run / "checkpoints").is_dir():
        raw["train"] = {**TRAIN_TINY, "steps": 1, "checkpoint_every": 1, "out_dir": str(run)}
        train(build_experiment_config(raw))
    return run


TINY_RENDERER = {"size": 32, "fc": [64, 1024], "base_channels": 4, "conv_widths": [8]}


def tiny_renderer_run(workdir: Path) -> Path:
    """A tiny painting renderer trained for one step by the engine (for agents to stand on)."""
    return one_step_run(Path(workdir) / "tiny-renderer", _renderer(workdir))


def _renderer(workdir: Path) -> dict:
    return {"method": "painting_renderer", "model": dict(TINY_RENDERER), "data": {"length": 64}}


def _agent(workdir: Path) -> dict:
    model = {"renderer": str(tiny_renderer_run(workdir)), "size": 32, "focus_size": 16, "net_input_size": 32,
             "max_step": 3, "actor_width": 4, "critic_width": 4, "attention_width": 8, "attention_unet_width": 4,
             "feature_mask": "saliency", "vgg_weight": 0.0, "batch_size": 4, "warmup": 2,
             "updates_per_step": 1.0, "replay_capacity": 64, "focus_reward": "fg_improve"}
    return {"method": "painting_agent", "model": model,
            "data": {"sources": ["synthetic"], "size": 32, "length": 16}}


def shapes_dataset(workdir: Path, size: int = 16, n: int = 24) -> Path:
    """A small shapes world (captions in AttnGAN's birds layout), written once per folder."""
    from condsynth.data.synth import shapes

    out = Path(workdir) / f"shapes{size}-{n}"
    if not (out / "meta.json").is_file():
        shapes.write_dataset(out, n, size=size, seed=2, test_fraction=0.25, overwrite=True, progress=False)
    return out


def _damsm(workdir: Path) -> dict:
    model = {"text_encoder": "rnn", "dim": 16, "emb_dim": 8, "image_encoder": "small_cnn", "cnn_width": 4}
    return {"method": "damsm", "model": model,
            "data": {"root": str(shapes_dataset(workdir)), "layout": "cub", "image_size": 16, "flip": False,
                     "words_num": 8}}


def tiny_damsm_run(workdir: Path) -> Path:
    """The tiny DAMSM trained for one step by the engine (for the text-to-image methods to stand on)."""
    return one_step_run(Path(workdir) / "tiny-damsm", _damsm(workdir))


def _text_to_image(method: str):
    def make(workdir: Path) -> dict:
        model = {"damsm": str(tiny_damsm_run(workdir)), "image_size": 16, "ngf": 4, "ndf": 2, "z_dim": 8,
                 "cond_dim": 4, "text_dim": 16, "init_gain": 0.3}
        model.update({"dense_layers": 2, "growth": 4} if method == "hfgan" else {"r_num": 1})
        return {"method": method, "model": model,
                "data": {"root": str(shapes_dataset(workdir)), "layout": "cub", "image_size": 16, "load_size": 16,
                         "flip": False, "words_num": 8}}
    return make


def faces_dataset(workdir: Path, size: int = 32, n: int = 24) -> Path:
    """A small faces world (two training identities at two ages, two test identities at all ten groups), written once."""
    from condsynth.data.synth import faces

    out = Path(workdir) / f"faces{size}-{n}"
    if not (out / "meta.json").is_file():
        faces.write_dataset(out, n, size=size, seed=1, test_fraction=20 / n, ages_per_identity=2, overwrite=True,
                            progress=False)
    return out


def _face_probe(workdir: Path) -> dict:
    return {"method": "face_probe", "model": {"task": "landmarks", "width": 4},
            "data": {"root": str(faces_dataset(workdir)), "image_size": 32}}


def talking_prepared(workdir: Path, words: int = 2, size: int = 24) -> Path:
    """A tiny prepared LRW cache (the layout ``data prepare lrw`` writes), made of drawn mouths:
    word 0 opens the mouth in the first half of the clip, word 1 in the second half."""
    import json

    import numpy as np

    out = Path(workdir) / f"talking-prepared{size}"
    if (out / "index.json").is_file():
        return out
    rng = np.random.default_rng(0)
    clips = []
    for split, n in (("train", 4), ("test", 2)):
        (out / split).mkdir(parents=True, exist_ok=True)
        for w in range(words):
            for k in range(n):
                crops = rng.integers(90, 110, (29, size, size, 3)).astype(np.uint8)
                half = slice(0, 14) if w == 0 else slice(15, 29)
                crops[half, size * 2 // 3: size * 5 // 6, size // 3: size * 2 // 3] = 20
                name = f"W{w}_{k + 1:05d}"
                np.savez(out / split / f"{name}.npz", crops=crops, landmarks=np.zeros((29, 68, 2), np.float32),
                         mfcc=np.zeros((29, 28, 12), np.float32))
                clips.append({"name": f"W{w}/{split}/{name}", "split": split, "word": f"W{w}", "label": w,
                              "file": f"{split}/{name}.npz", "frames": 29})
    (out / "index.json").write_text(json.dumps({"layout": "lrw", "size": size, "words": [f"W{w}" for w in
                                                                                       range(words)],
                                                "clips": clips, "failures": []}))
    return out


def _lipreader(workdir: Path) -> dict:
    return {"method": "lipreader", "model": {"arch": "staf", "n_words": 2, "words": ["W0", "W1"], "width": 2,
                                             "blocks": [1, 1, 0, 0], "feature_dim": 4, "hidden": 4,
                                             "lstm_layers": 1},
            "data": {"root": str(talking_prepared(workdir)), "roi": "mouth", "size": 16, "frames": 16}}


def _landmark_predictor(workdir: Path) -> dict:
    return {"method": "ldcgan_landmarks", "model": {"hidden": 16, "latent": 8},
            "data": {"root": str(faces_dataset(workdir)), "image_size": 32}}


def tiny_landmark_predictor_run(workdir: Path) -> Path:
    """A tiny LDcGAN landmark predictor G_L trained for one step (the frozen part LDcGAN stands on)."""
    return one_step_run(Path(workdir) / "tiny-landmark-predictor", _landmark_predictor(workdir))


def _ldcgan(workdir: Path) -> dict:
    model = {"image_size": 32, "n_i": 2, "n_l": 2, "res_blocks": 1, "ndf": 2,
             "landmark_predictor": str(tiny_landmark_predictor_run(workdir))}
    return {"method": "ldcgan", "model": model, "data": {"root": str(faces_dataset(workdir)), "image_size": 32}}


def tiny_lipreader_run(workdir: Path) -> Path:
    """A tiny training lip reader trained for one step (the frozen part of AVWnet's word loss)."""
    return one_step_run(Path(workdir) / "tiny-lipreader", _lipreader(workdir))


def tiny_atnet_run(workdir: Path) -> Path:
    """A tiny AT-net trained for one step (AVWnet's landmark predictor at inference)."""
    return one_step_run(Path(workdir) / "tiny-atnet", _atnet(workdir))


TINY_AVWNET = {"image_size": 32, "n_i": 4, "audio_channels": [2, 2, 2, 2, 2], "audio_fc": 8, "ndf": 2,
               "d_cond_dim": 4, "d_audio_channels": [2, 2, 2, 2, 2]}


def _avwnet(workdir: Path) -> dict:
    model = {**TINY_AVWNET, "lip_reader": str(tiny_lipreader_run(workdir)),
             "landmark_predictor": str(tiny_atnet_run(workdir))}
    return {"method": "avwnet", "model": model, "data": {"root": str(talking_prepared(workdir, size=32))}}


def _atnet(workdir: Path) -> dict:
    model = {"audio_channels": [2, 2, 2, 2, 2], "audio_fc": 8, "audio_out": 4, "lm_hidden": 4, "lm_out": 4,
             "hidden": 4, "layers": 1}
    return {"method": "avwnet_atnet", "model": model, "data": {"root": str(talking_prepared(workdir, size=32))}}


# method name -> function(workdir) -> raw config without the train section
TINY: dict[str, Callable[[Path], dict]] = {
    "template": _paired("template", {"width": 4, "depth": 1}),
    "pix2pix": _paired("pix2pix", {"ngf": 4, "ndf": 4, "num_downs": 4, "d_layers": 1}),
    "pix2pixhd": _pix2pixhd,
    "cyclegan": _unpaired("cyclegan", {"ngf": 4, "ndf": 4, "n_blocks": 1, "d_layers": 1, "pool_size": 3}),
    "painting_renderer": _renderer,
    "painting_agent": _agent,
    "segmenter": _segmenter,
    "damsm": _damsm,
    "face_probe": _face_probe,
    "lipreader": _lipreader,
    "ldcgan_landmarks": _landmark_predictor,
    "ldcgan": _ldcgan,
    "avwnet_atnet": _atnet,
    "avwnet": _avwnet,
    "hfgan": _text_to_image("hfgan"),
    "stacked_t2i": _text_to_image("stacked_t2i"),
}


def tiny_config(method: str, workdir: str | Path, out_dir: str | Path | None = None, **train) -> dict:
    """A raw experiment config for ``method`` that trains in about a second on a CPU."""
    if method not in TINY:
        raise KeyError(f"no tiny config for method '{method}': add one to condsynth.testing.TINY")
    workdir = Path(workdir)
    raw = TINY[method](workdir)
    raw["train"] = {**TRAIN_TINY, "out_dir": str(out_dir or workdir / f"run-{method}"), **train}
    return raw


def build_method(raw: dict, device: str = "cpu"):
    """The method of a raw config, built as the engine builds it for training."""
    cfg = build_experiment_config(raw)
    torch.manual_seed(cfg.train.seed)
    return prepare_training(get_method_class(cfg.method)(cfg.model, cfg.data), device)


def prepare_training(method, device: str = "cpu"):
    """What the engine does to a constructed method before training: ``setup_training()`` and
    its frozen parts loaded and attached. Returns the method."""
    method.setup_training()
    load_frozen_parts(method, torch.device(device))
    return method


def fake_context(method, optimizers: dict | None = None, step: int = 0, epoch: int = 0) -> StepContext:
    """A single-process :class:`StepContext`: plain ``backward``, optimizer step + zero_grad."""
    opts = optimizers if optimizers is not None else method.configure_optimizers(TrainConfig())

    def do_step(name):
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)

    ctx = StepContext(method.networks(), lambda loss: loss.backward(), do_step, contextlib.nullcontext,
                      torch.device("cpu"), step, epoch)
    ctx.optimizers = opts
    return ctx


def first_batch(method, split: str = "train", n: int = 2):
    ds = method.build_dataset(split)
    return torch.utils.data.default_collate([ds[(i, i)] for i in range(min(n, len(ds)))])


def sigkill_then_resume(raw: dict, kill_after: int, timeout: float = 120.0) -> tuple[int, dict, Path]:
    """Run ``condsynth train`` on ``raw`` in a subprocess, ``kill -9`` it once a checkpoint of step
    ``kill_after`` or later is the newest on disk, then ``--resume`` it to the end. Returns (the step of the newest checkpoint
    at the kill, that checkpoint's method state, the final checkpoint folder); raises if any part fails."""
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from condsynth.engine.checkpoint import find_latest
    from condsynth.io.state import load_state

    run = Path(raw["train"]["out_dir"])
    config = run.with_name(run.name + ".yaml")
    config.write_text(yaml.safe_dump(raw))
    args = [sys.executable, "-m", "condsynth", "train", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    def newest() -> int:        # the checkpoint --resume would take (the 'latest' pointer follows each rename)
        latest = find_latest(run) if (run / "checkpoints").is_dir() else None
        return int(latest.name.split("_")[1]) if latest is not None else -1

    deadline = time.time() + timeout
    while time.time() < deadline and newest() < kill_after:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        raise AssertionError(f"the run was not killed (exit {proc.returncode}): {proc.stderr.read()[-2000:]!r}")
    killed_at = find_latest(run)
    if killed_at is None:
        raise AssertionError(f"no checkpoint in {run} at the kill")
    state = load_state(killed_at / "train_state")["method"]
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise AssertionError(f"--resume failed: {done.stderr[-3000:]}")
    return int(killed_at.name.split("_")[1]), state, find_latest(run)
