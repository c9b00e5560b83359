"""Hostile inputs to every command, in this process: each ends in one clear line, changes nothing.

Every case in CLI_CASES, CHECKPOINT_CASES and IMAGE_CASES asserts a non-zero exit, stderr exactly
one line ``condsynth: error: ...`` naming the file or the dotted key, no traceback, and that no
file under the workspace or the dataset was added, removed or changed. The tests after them check
what *is* allowed (an --overwrite, a sub-folder, streaming) is handled correctly. Cases that need
other processes (kill -9, two trainings, a full or read-only disk) are in test_hostile_processes.py.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import stat
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth.errors import UserError
from hostile_helpers import (CONFIG, assert_one_error, assert_unchanged, copy_run, expect_error, run_cli,
                             save_png, snapshot, tiny_run, tiny_train_args)

__all__ = ["tiny_run"]  # the module-scoped fixture, imported for pytest

STEP = "checkpoints/step_00000003"
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def ws(tmp_path, tiny_run, scenes16, monkeypatch):
    """A user's workspace: a run, photos, a folder and a file of theirs, eval folders, a FIFO."""
    root = tmp_path / "ws"
    root.mkdir()
    copy_run(tiny_run, root / "run")
    for i in range(3):
        save_png(root / "photos" / f"p{i}.png", seed=i)
    (root / "mine").mkdir()
    (root / "mine" / "keep.txt").write_text("mine")
    (root / "notes.txt").write_text("my notes")
    for d in ("ref", "gen"):
        for i in range(2):
            save_png(root / d / f"x{i}.png", seed=i)
    (root / "p.json").write_text("{}")
    save_png(root / "out" / "p0.png", seed=9)          # an earlier output of the same name
    os.mkfifo(root / "fifo.png")
    (root / "loop.png").symlink_to(root / "loop.png")
    (root / "runlink").symlink_to(root / "run")
    (root / "bad.yaml").write_bytes(b"method: pix2pix\n\xff\xfe\n")
    (root / "list.yaml").write_text("- method\n- pix2pix\n")
    (root / "numkey.yaml").write_text("method: pix2pix\ntrain:\n  1: 2\n")
    (root / "model_list.yaml").write_text("method: pix2pix\nmodel: [1, 2]\n")
    monkeypatch.chdir(root)
    names = {"ws": str(root), "run": str(root / "run"), "data": str(scenes16), "step": str(root / "run" / STEP)}
    return SimpleNamespace(root=root, names=names, watch=(root, scenes16))


def fmt(items, names):
    return [str(x).format(**names) for x in items]


TRAIN = ["train", CONFIG, "data.root={data}", "train.out_dir={ws}/newrun", "train.progress=false"]

# One case a line: "id | argv (shell words; TRAIN = train CONFIG data.root out_dir progress, TRAIN4 = the same
# without progress) | fragments of the one error line". {run}, {ws}, {data}, {step}, {agent} are the
# workspace's paths.
CLI_TABLE = r"""
export-out-is-the-run | export {run} --out {run} | {run}: would replace
export-out-is-the-run-via-symlink | export runlink --out run | run: would replace
export-out-is-the-run-via-dotdot | export {run} --out {run}/../run | would replace
export-out-inside-the-run | export {run} --out {run}/export | inside the input folder
export-checkpoint-out-its-run | export {step} --out {run} | would replace
export-out-checkpoints-folder | export {step} --out {run}/checkpoints | would replace
export-out-non-empty-folder | export {run} --out mine | mine: folder exists and is not empty | --overwrite
export-out-existing-file | export {run} --out notes.txt | notes.txt: exists and is a file
export-out-under-a-file | export {run} --out notes.txt/exp | notes.txt is a file, not a folder
export-out-empty-path | export {run} --out '' | empty output path
export-out-the-workspace | export {run} --out . | would replace
export-missing-run | export nope --out exp | nope: checkpoint not found
export-run-is-a-file | export notes.txt --out exp | notes.txt
translate-out-is-the-input-folder | translate --checkpoint {run} photos --out photos | photos: is the folder the inputs are read from
translate-out-is-an-input-file | translate --checkpoint {run} photos/p0.png --out photos/p0.png | photos/p0.png: is also an input
translate-out-into-the-run | translate --checkpoint {run} photos --out {run}/samples | inside the input folder {run}
translate-out-is-the-run | translate --checkpoint {step} photos --out {run} | is also an input
translate-out-existing-file | translate --checkpoint {run} photos --out notes.txt | notes.txt: exists and is a file
translate-out-under-a-file | translate --checkpoint {run} photos --out notes.txt/o | notes.txt is a file, not a folder
translate-output-name-exists | translate --checkpoint {run} photos --out out | out/p0.png: file exists | --overwrite
translate-input-fifo | translate --checkpoint {run} fifo.png --out o | fifo.png: not a regular file
translate-input-symlink-loop | translate --checkpoint {run} loop.png --out o | loop.png: cannot read
translate-input-missing | translate --checkpoint {run} none.png --out o | none.png: file not found
translate-input-empty-folder | translate --checkpoint {run} mine --out o | mine: no image files
translate-input-text-file | translate --checkpoint {run} notes.txt --out o | notes.txt: not a readable image
translate-device-tpu | translate --checkpoint {run} photos --out o --device tpu | --device: unknown device 'tpu'
translate-device-cuda-index | translate --checkpoint {run} photos --out o --device cuda:7 | --device: 'cuda:7'
translate-device-nonsense | translate --checkpoint {run} photos --out o --device cpu:x | --device
translate-seed-negative | translate --checkpoint {run} photos --out o --seed -1 | --seed: must be between 0 and 9223372036854775807, got -1
translate-seed-beyond-64-bits | translate --checkpoint {run} photos --out o --seed 18446744073709551616 | --seed: must be between
translate-seed-not-a-number | translate --checkpoint {run} photos --out o --seed x | --seed: must be an integer
translate-unknown-option | translate --checkpoint {run} photos --out o --frobnicate | unrecognized arguments: --frobnicate
paint-out-is-the-photo | paint photos/p0.png -n 5 --out photos/p0.png | photos/p0.png: is also an input
paint-two-outputs-one-file | paint photos/p0.png -n 5 --out c.png --contact-sheet c.png | given to both --out and --contact-sheet
paint-out-existing-file | paint photos/p0.png -n 5 --out out/p0.png | out/p0.png: file exists
paint-json-existing-file | paint photos/p0.png -n 5 --out new.png --json p.json | p.json: file exists
paint-svg-under-a-file | paint photos/p0.png -n 5 --out new.png --svg notes.txt/s.svg | notes.txt is a file, not a folder
paint-animation-is-a-folder | paint photos/p0.png -n 5 --out new.png --animation anim.gif | anim.gif: is a folder, expected a file name
paint-into-the-agent-checkpoint | paint photos/p0.png -n 5 --out {agent}/p.png | inside the input folder
paint-strokes-huge | paint photos/p0.png -n 1000000000 --out new.png | --strokes: stroke count 1000000000 is above the limit
paint-strokes-nan | paint photos/p0.png -n nan --out new.png | --strokes: stroke count
paint-threads-huge | paint photos/p0.png -n 5 --out new.png --threads 100000 | --threads: must be between 0 and
paint-seed-beyond-64-bits | paint photos/p0.png -n 5 --out new.png --seed 1180591620717411303424 | --seed: must be between
paint-iters-huge | paint photos/p0.png -n 5 --out new.png --iters 1000000000 | --iters: must be at most
paint-input-fifo | paint fifo.png -n 5 --out new.png | fifo.png: not a regular file
eval-out-into-the-reference | eval psnr ref gen --out ref/r.json | ref/r.json: is inside the input folder ref
eval-out-is-the-reference | eval psnr ref gen --out ref | ref: is also an input
eval-keep-generated-is-the-reference | eval psnr ref --checkpoint {run} --inputs photos --keep-generated ref | ref: is also an input
eval-keep-generated-into-the-run | eval psnr ref --checkpoint {run} --inputs photos --keep-generated {run}/gen | inside the input folder {run}
eval-out-existing-file | eval psnr ref gen --out p.json | p.json: file exists
eval-default-out-exists | eval ssim ref gen | eval-ssim.json: file exists
eval-out-under-a-file | eval psnr ref gen --out notes.txt/r.json | notes.txt is a file
eval-stats-into-the-reference | eval fid-stats ref --stats ref/s.npz | ref/s.npz: is inside the input folder ref
eval-save-stats-is-out | eval fid ref gen --out a.json --save-stats a.json | given to both --out and --save-stats
eval-estimator-into-the-faces | eval age-train ref --estimator ref/age.safetensors | ref/age.safetensors: is inside the input folder ref
eval-device-tpu | eval fid ref gen --device tpu --out f.json | --device: unknown device 'tpu'
eval-batch-size-zero | eval fid ref gen --batch-size 0 | --batch-size: must be between 1
eval-kid-subsets-negative | eval kid ref gen --kid-subsets -3 | --kid-subsets
eval-is-splits-zero | eval is ref --splits 0 | --splits: must be between 1
eval-threshold-nan | eval verify ref gen --threshold nan | --threshold: must be a finite
eval-lr-inf | eval age-train ref --estimator e.safetensors --lr inf | --lr: must be a finite
eval-age-seed-negative | eval age-train ref --estimator e.safetensors --seed -2 | --seed: must be between 0
synth-out-non-empty-folder | data synth scenes --out mine --n 3 --size 16 | mine: folder exists and is not empty
synth-out-existing-file | data synth scenes --out notes.txt --n 3 --size 16 | notes.txt: exists and is a file
synth-out-under-a-file | data synth scenes --out notes.txt/d --n 3 --size 16 | notes.txt is a file, not a folder
synth-out-the-dataset | data synth scenes --out {data} --n 3 --size 16 | folder exists and is not empty
synth-size-huge | data synth scenes --out d --n 3 --size 1000000000 | --size must be at most 4096
synth-n-huge | data synth scenes --out d --n 1000000000000 --size 16 | --n must be at most
synth-seed-negative | data synth scenes --out d --n 3 --seed -1 | --seed
synth-fraction-nan | data synth scenes --out d --n 3 --val-fraction nan | --val-fraction
strokes-out-existing-file | data strokes --out b.safetensors --n 2 --size 16 | b.safetensors: file exists
strokes-out-under-a-file | data strokes --out notes.txt/b.safetensors --n 2 --size 16 | notes.txt is a file, not a folder
strokes-too-many-for-memory | data strokes --out s.safetensors --n 1000000000000 --size 128 | the bank is built in memory
strokes-size-huge | data strokes --out s.safetensors --n 2 --size 1048576 | --size must be a power of two from 16 to 1024
strokes-workers-huge | data strokes --out s.safetensors --n 2 --workers 100000 | --workers: must be between 1 and
strokes-seed-beyond-64-bits | data strokes --out s.safetensors --n 2 --seed 18446744073709551616 | --seed: must be between
train-section-is-a-list | train model_list.yaml | config section 'model' must be a mapping
train-yaml-is-a-list | train list.yaml | list.yaml: the top level must be a mapping
train-yaml-not-utf8 | train bad.yaml | bad.yaml: not a YAML text file
train-yaml-numeric-key | train numkey.yaml | unknown config key 'train.1'
train-yaml-is-a-folder | train mine | mine: config file not found
train-into-another-run | TRAIN4 'train.out_dir={run}' | {run}: holds the checkpoints of another run | --resume | --overwrite
train-into-the-dataset | TRAIN4 'train.out_dir={data}/run' | inside the input folder {data}
train-out-dir-is-the-dataset | TRAIN4 'train.out_dir={data}' | is also an input
train-out-dir-is-a-file | TRAIN4 train.out_dir=notes.txt | notes.txt: exists and is a file
train-out-dir-under-a-file | TRAIN4 train.out_dir=notes.txt/run | notes.txt is a file, not a folder
train-resume-under-a-file | TRAIN4 train.out_dir=notes.txt/run --resume | notes.txt is a file
config-model.ngf=1000000000 | TRAIN model.ngf=1000000000 | model.ngf: must be between 1 and 4096, got 1000000000
config-model.ngf=0 | TRAIN model.ngf=0 | model.ngf: must be between 1 and 4096, got 0
config-model.num_downs=1000000 | TRAIN model.num_downs=1000000 | model.num_downs: must be between 2 and 16
config-model.num_downs=1 | TRAIN model.num_downs=1 | model.num_downs: must be between 2 and 16, got 1
config-model.ngf=4096+model.ndf=4096 | TRAIN model.ngf=4096 model.ndf=4096 | model: the networks have | more than the
config-model.lr=.nan | TRAIN model.lr=.nan | model.lr: must be a finite number
config-model.lr=.inf | TRAIN model.lr=.inf | model.lr: must be a finite number
config-model.lr=-1 | TRAIN model.lr=-1 | model.lr: must be between 0.0 and
config-model.lambda_l1=nan | TRAIN model.lambda_l1=nan | model.lambda_l1: must be a finite number
config-model.dropout=1.5 | TRAIN model.dropout=1.5 | model.dropout: must be between 0.0 and 1.0
config-model.beta1=-0.5 | TRAIN model.beta1=-0.5 | model.beta1
config-train.seed=18446744073709551616 | TRAIN train.seed=18446744073709551616 | train.seed: must be between 0 and
config-train.seed=-1 | TRAIN train.seed=-1 | train.seed: must be between 0 and
config-train.threads=100000 | TRAIN train.threads=100000 | train.threads: must be between 0 and
config-train.num_workers=100000 | TRAIN train.num_workers=100000 | train.num_workers: must be between 0 and
config-train.batch_size=0 | TRAIN train.batch_size=0 | train.batch_size: must be between 1
config-train.batch_size=1000000000 | TRAIN train.batch_size=1000000000 | train.batch_size: must be between 1
config-train.steps=-5 | TRAIN train.steps=-5 | train.steps: must be between 0
config-train.checkpoint_every=0 | TRAIN train.checkpoint_every=0 | train.checkpoint_every
config-train.ema_decay=2 | TRAIN train.ema_decay=2 | train.ema_decay: must be between 0.0 and 1.0
config-train.grad_clip=.inf | TRAIN train.grad_clip=.inf | train.grad_clip: must be a finite
config-train.schedule.gamma=.nan | TRAIN train.schedule.gamma=.nan | train.schedule.gamma: must be a finite
config-train.eval_batches=1208925819614629174706176 | TRAIN train.eval_batches=1208925819614629174706176 | train.eval_batches
config-data.load_size=1000000000 | TRAIN data.load_size=1000000000 | data.load_size: must be between 1 and 16384
config-data.crop_size=0 | TRAIN data.crop_size=0 | data.crop_size: must be between 1
config-train.device=tpu | TRAIN train.device=tpu | train.device
config-train.precision=fp8 | TRAIN train.precision=fp8 | train.precision
"""


def parse_cases(table: str) -> list[tuple[str, list[str], list[str]]]:
    cases = []
    for line in table.strip().splitlines():
        cid, argv, *fragments = (part.strip() for part in line.split(" | "))
        words = shlex.split(argv)
        if words[0] in ("TRAIN", "TRAIN4"):
            words = (TRAIN if words[0] == "TRAIN" else TRAIN[:4]) + words[1:]
        cases.append((cid, words, fragments))
    return cases


CLI_CASES = parse_cases(CLI_TABLE)
# refusals only where there is no GPU
NO_GPU_TABLE = r"""
translate-device-cuda | translate --checkpoint {run} photos --out o --device cuda | --device: 'cuda', but no CUDA device
train-device-cuda | TRAIN train.device=cuda | train.device: 'cuda', but no CUDA device
eval-device-cuda | eval fid ref gen --device cuda --out q.json | --device: 'cuda', but no CUDA device
"""
if HAS_CUDA:
    CLI_CASES = [c for c in CLI_CASES if c[0] != "translate-device-cuda-index"]
else:
    CLI_CASES += parse_cases(NO_GPU_TABLE)


@pytest.fixture
def painter_cache(monkeypatch):
    """Load the bundled painting agent once for all paint cases (they fail after loading it)."""
    from condsynth.pipelines import paint
    if not hasattr(painter_cache, "painter"):
        painter_cache.painter = paint.Painter.from_pretrained()
    monkeypatch.setattr(paint.Painter, "from_pretrained", classmethod(lambda cls, path=None: painter_cache.painter))
    return painter_cache.painter


@pytest.mark.parametrize("argv, fragments", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_hostile_command(argv, fragments, ws, capsys, request):
    names = dict(ws.names)
    if argv[0] == "paint":
        names["agent"] = request.getfixturevalue("painter_cache").source
        (ws.root / "anim.gif").mkdir()
    if argv[0] == "data" and argv[1] == "strokes":
        (ws.root / "b.safetensors").write_bytes(b"an earlier bank")
    if argv[:2] == ["eval", "ssim"]:
        (ws.root / "eval-ssim.json").write_text("{}")
    expect_error(fmt(argv, names), capsys, *fmt(fragments, names), watch=ws.watch)


# ------------------------------------------------------------------- checkpoint files

def _json(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _state_json(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


# (id, what to do to RUN/checkpoints/step_00000003, the file named in the error, fragment)
CHECKPOINT_CASES = [
    ("config-json-list", lambda s: (s / "config.json").write_text("[1, 2]"), "config.json", "not a condsynth checkpoint"),
    ("config-json-null", lambda s: (s / "config.json").write_text("null"), "config.json", "not a condsynth checkpoint"),
    ("config-json-garbage", lambda s: (s / "config.json").write_bytes(b"\xff\xfe\x00\x01garbage"), "config.json",
     "unreadable checkpoint config"),
    ("config-json-truncated", lambda s: _truncate(s / "config.json"), "config.json", "unreadable checkpoint config"),
    ("config-json-no-method", lambda s: _json(s / "config.json", lambda d: d["config"].pop("method")), "config.json",
     "not a condsynth checkpoint"),
    ("config-json-method-not-a-string", lambda s: _json(s / "config.json", lambda d: d["config"].update(method=[1])),
     "config.json", "not a condsynth checkpoint"),
    ("config-json-step-not-a-number", lambda s: _json(s / "config.json", lambda d: d.update(step="three")),
     "config.json", "'step' must be a non-negative integer"),
    ("config-json-ngf-huge", lambda s: _json(s / "config.json", lambda d: d["config"]["model"].update(ngf=10 ** 9)),
     "config.json", "model.ngf: must be between 1 and 4096"),
    ("config-json-lr-nan", lambda s: (s / "config.json").write_text((s / "config.json").read_text().replace(
        '"lr": 0.0002', '"lr": NaN')), "config.json", "model.lr: must be a finite number"),
    ("config-json-unknown-key", lambda s: _json(s / "config.json", lambda d: d["config"]["train"].update(stepz=1)),
     "config.json", "unknown config key 'train.stepz'"),
    ("config-json-networks-do-not-fit", lambda s: _json(s / "config.json", lambda d: d["config"]["model"].update(
        ngf=4096, ndf=4096)), "config.json", "the networks have"),
    ("config-json-too-large", lambda s: (s / "config.json").write_bytes(b" " * (17 * 2 ** 20)), "config.json",
     "too large for a checkpoint config"),
    ("config-json-is-a-folder", lambda s: ((s / "config.json").unlink(), (s / "config.json").mkdir()), "run",
     "no checkpoint found"),
    ("config-json-symlink-loop", lambda s: ((s / "config.json").unlink(), (s / "config.json").symlink_to(
        s / "config.json")), "run", "no checkpoint found"),
    ("weights-truncated", lambda s: _truncate(s / "model.safetensors"), "model.safetensors",
     "not a valid safetensors file"),
    ("weights-header-only", lambda s: _truncate(s / "model.safetensors", 0.02), "model.safetensors",
     "not a valid safetensors file"),
    ("weights-huge-header-length", lambda s: (s / "model.safetensors").write_bytes(struct.pack("<Q", 2 ** 62) + b"{}"),
     "model.safetensors", "not a valid safetensors file"),
    ("weights-missing", lambda s: (s / "model.safetensors").unlink(), "model.safetensors", "file not found"),
    ("weights-of-another-architecture", lambda s: _json(s / "config.json", lambda d: d["config"]["model"].update(
        ngf=8)), "model.safetensors", "weights do not fit this model"),
]
# the training state only matters to --resume
STATE_CASES = [
    ("state-names-a-missing-tensor", lambda s: _state_json(s / "train_state.json", '"s.optimizers', '"s.gone'),
     "train_state.json", "names tensor 's.gone"),
    ("state-json-list", lambda s: (s / "train_state.json").write_text("[]"), "train_state.json",
     "not a training state"),
    ("state-json-null", lambda s: (s / "train_state.json").write_text("null"), "train_state.json",
     "not a training state"),
    ("state-json-garbage", lambda s: (s / "train_state.json").write_bytes(b"\x00\xff{{"), "train_state.json",
     "not valid JSON"),
    ("state-no-rng", lambda s: _state_json(s / "train_state.json", '"rng"', '"rnx"'), "train_state.json",
     "'rng' is missing"),
    ("state-epoch-negative", lambda s: _state_json(s / "train_state.json", '"epoch", 0]', '"epoch", -4]'),
     "train_state.json", "'epoch'"),
    ("state-tensors-truncated", lambda s: _truncate(s / "train_state.safetensors"), "train_state.safetensors",
     "not a valid safetensors file"),
    ("state-tensors-missing", lambda s: (s / "train_state.safetensors").unlink(), "train_state.safetensors",
     "file not found"),
    ("state-of-another-optimizer", lambda s: _state_json(s / "train_state.json", '"param_groups"', '"param_groupz"'),
     "step_00000003", "training state does not fit this run"),
]


@pytest.mark.parametrize("command", ["export", "translate"])
@pytest.mark.parametrize("mutate, named, fragment", [c[1:] for c in CHECKPOINT_CASES],
                         ids=[c[0] for c in CHECKPOINT_CASES])
def test_hostile_checkpoint_files(mutate, named, fragment, command, ws, capsys):
    mutate(ws.root / "run" / STEP)
    argv = ["export", "run", "--out", "exp"] if command == "export" else \
        ["translate", "--checkpoint", "run", "photos", "--out", "o"]
    line = expect_error(argv, capsys, fragment, watch=ws.watch)
    assert named in line


@pytest.mark.parametrize("mutate, named, fragment", [c[1:] for c in STATE_CASES + CHECKPOINT_CASES[:8]],
                         ids=[c[0] for c in STATE_CASES + CHECKPOINT_CASES[:8]])
def test_hostile_checkpoint_files_on_resume(mutate, named, fragment, ws, capsys):
    mutate(ws.root / "run" / STEP)
    line = expect_error(tiny_train_args(ws.names["data"], ws.root / "run", steps=5) + ["--resume"], capsys, fragment,
                        watch=ws.watch)
    assert named in line


def test_a_garbled_latest_pointer_falls_back_to_the_newest_step(ws, capsys):
    for content in (b"\xff\xfe\x00", b"../../../etc\n", b"step_99999999\n"):
        (ws.root / "run" / "checkpoints" / "latest").write_bytes(content)
        rc, out, err = run_cli(["export", "run", "--out", "exp", "--overwrite"], capsys)
        assert rc == 0, err


# ------------------------------------------------------------------- images

def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (img.convert("RGBA") if fmt == "DDS" else img).save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header(w: int, h: int) -> bytes:
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _dds(fourcc: bytes, dxgi: int | None = None) -> bytes:
    head = b"DDS " + struct.pack("<7I", 124, 0x1007, 16, 16, 0, 0, 0) + b"\0" * 44
    head += struct.pack("<2I4s5I", 32, 0x4, fourcc, 0, 0, 0, 0, 0) + struct.pack("<5I", 0x1000, 0, 0, 0, 0)
    if dxgi is not None:
        head += struct.pack("<5I", dxgi, 3, 0, 1, 0)
    return head + b"\0" * 256


def _tiff(**tags) -> bytes:
    """A 4x4 8-bit grey strip TIFF with some tags replaced (tag number -> value)."""
    entries = {256: 4, 257: 4, 258: 8, 259: 1, 262: 1, 273: 0, 277: 1, 278: 4, 279: 16}
    entries.update({int(k[1:]): v for k, v in tags.items()})
    ifd = struct.pack("<H", len(entries))
    data_at = 8 + 2 + 12 * len(entries) + 4
    for tag, value in sorted(entries.items()):
        ifd += struct.pack("<HHII", tag, 4, 1, data_at if tag == 273 else value)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\0" * 64


IMAGE_CASES = [
    ("truncated-tiff-lzw", "x.tif", lambda: _encoded("TIFF", compression="tiff_lzw")[:600], ""),
    ("truncated-tiff-raw", "x.tif", lambda: _encoded("TIFF")[:300], "corrupt or truncated"),
    ("tiff-13-bit-samples", "x.tif", lambda: _tiff(t258=13), ""),
    ("tiff-unknown-compression", "x.tif", lambda: _tiff(t259=99), ""),
    ("tiff-7-samples-per-pixel", "x.tif", lambda: _tiff(t277=7), ""),
    ("tiff-100000-squared", "x.tif", lambda: _tiff(t256=100000, t257=100000), "too large"),
    ("dds-unknown-fourcc", "x.dds", lambda: _dds(b"ZZZZ"), "cannot decode this image"),
    ("dds-unknown-dxgi-format", "x.dds", lambda: _dds(b"DX10", 999), "cannot decode this image"),
    ("dds-truncated", "x.dds", lambda: _encoded("DDS")[:200], "corrupt or truncated"),
    ("png-decompression-bomb", "x.png", lambda: _png_header(20000, 20000), "too large"),
    ("png-zero-width", "x.png", lambda: _png_header(0, 10), "not a readable image"),
    ("png-bad-crc", "x.png", lambda: (lambda b: b[:40] + bytes([b[40] ^ 0xff]) + b[41:])(_encoded("PNG")), ""),
    ("ppm-bomb", "x.ppm", lambda: b"P6 100000 100000 255\n" + b"\0" * 100, "too large"),
    ("ppm-zero-size", "x.ppm", lambda: b"P6 0 0 255\n", ""),
    ("jpeg-truncated", "x.jpg", lambda: _encoded("JPEG")[:300], "corrupt or truncated"),
    ("gif-truncated", "x.gif", lambda: _encoded("GIF")[:200], ""),
    ("webp-truncated", "x.webp", lambda: _encoded("WEBP")[:100], ""),
    ("bmp-truncated", "x.bmp", lambda: _encoded("BMP")[:100], "corrupt or truncated"),
    ("empty-file", "x.png", lambda: b"", "file is empty"),
    ("text-named-png", "x.png", lambda: b"hello, not an image", "not a readable image"),
]


@pytest.mark.parametrize("name, make, fragment", [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_hostile_image_to_translate(name, make, fragment, ws, capfd):
    """capfd: the one-line check covers what Pillow's plugins print or log, at the descriptor level."""
    (ws.root / "bad").mkdir()
    (ws.root / "bad" / name).write_bytes(make())         # named explicitly: .dds is not listed from folders
    expect_error(["translate", "--checkpoint", "run", "photos", f"bad/{name}", "--out", "o"], capfd, f"{name}: ",
                 fragment, watch=ws.watch)


@pytest.mark.parametrize("name, make, fragment", [c[1:] for c in IMAGE_CASES[::3]], ids=[c[0] for c in IMAGE_CASES[::3]])
def test_hostile_image_to_paint(name, make, fragment, ws, capfd, painter_cache):
    (ws.root / "ref" / name).write_bytes(make())
    expect_error(["paint", f"ref/{name}", "-n", "5", "--out", "new.png"], capfd, f"{name}: ", fragment, watch=ws.watch)


def test_a_directory_named_like_an_image(ws):
    from condsynth.io.images import probe_image, read_image
    (ws.root / "dir.png").mkdir()
    for fn in (read_image, probe_image):
        with pytest.raises(UserError, match="dir.png: is a folder"):
            fn(ws.root / "dir.png")


# ------------------------------------------------------------------- what is allowed, done right

def _mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_exported_files_keep_the_umask_permissions_and_overwrite_only_when_asked(ws, capsys):
    umask = os.umask(0o022)
    session_mode = 0o666 & ~umask                    # the run was trained under the session's umask
    try:
        rc, _, err = run_cli(["export", "run", "--out", "exp"], capsys)
        assert rc == 0, err
        for f in (ws.root / "exp").rglob("*"):       # pipeline.json, G/config.json, G/model.safetensors
            assert _mode_of(f) == (0o755 if f.is_dir() else 0o644), f   # safetensors used to leave 0600
        assert _mode_of(ws.root / "exp") == 0o755
        before = snapshot(ws.root / "exp")
        expect_error(["export", "run", "--out", "exp"], capsys, "exp: folder exists", watch=ws.watch)
        rc, _, err = run_cli(["export", "run", "--out", "exp", "--overwrite", "--half"], capsys)
        assert rc == 0, err
        assert snapshot(ws.root / "exp") != before and not list(ws.root.glob(".exp*"))
        for f in (ws.root / "run").rglob("*.safetensors"):
            assert _mode_of(f) == session_mode, f    # checkpoints too
    finally:
        os.umask(umask)


def test_export_over_a_file_needs_overwrite(ws, capsys):
    rc, _, err = run_cli(["export", "run", "--out", "notes.txt", "--overwrite"], capsys)
    assert rc == 0, err
    assert (ws.root / "notes.txt" / "pipeline.json").is_file()
    assert (ws.root / "notes.txt" / "G" / "model.safetensors").is_file()


def test_translate_keeps_other_files_and_replaces_same_names_only_with_overwrite(ws, capsys):
    (ws.root / "out" / "other.txt").write_text("keep me")
    rc, _, err = run_cli(["translate", "--checkpoint", "run", "photos", "--out", "out", "--overwrite"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in (ws.root / "out").iterdir()) == ["other.txt", "p0.png", "p1.png", "p2.png"]
    assert (ws.root / "out" / "other.txt").read_text() == "keep me"
    # a sub-folder of the input folder is not an input (inputs are read from the folder itself)
    rc, _, err = run_cli(["translate", "--checkpoint", "run", "photos", "--out", "photos/translated"], capsys)
    assert rc == 0, err
    assert len(list((ws.root / "photos" / "translated").iterdir())) == 3


def test_translate_streams_one_image_at_a_time(ws, capsys, monkeypatch):
    import condsynth.pipelines.translate as T
    events = []
    read, save = T.read_image, T.save_image
    monkeypatch.setattr(T, "read_image", lambda *a, **k: (events.append("read"), read(*a, **k))[1])
    monkeypatch.setattr(T, "save_image", lambda *a, **k: (events.append("write"), save(*a, **k))[1])
    rc, _, err = run_cli(["translate", "--checkpoint", "run", "photos", "--out", "o"], capsys)
    assert rc == 0, err
    assert events == ["read", "write"] * 3


def test_translate_failing_midway_leaves_nothing(ws, capsys):
    """The third photo's header is fine, its data is cut: two outputs were written, none remain."""
    save_png(ws.root / "photos" / "p2.png", 64, 64)
    data = (ws.root / "photos" / "p2.png").read_bytes()
    (ws.root / "photos" / "p2.png").write_bytes(data[:len(data) // 2])
    expect_error(["translate", "--checkpoint", "run", "photos", "--out", "o"], capsys, "p2.png: corrupt or truncated",
                 watch=ws.watch)
    expect_error(["translate", "--checkpoint", "run", "photos", "--out", "out", "--overwrite"], capsys, "p2.png",
                 watch=ws.watch)          # the earlier out/p0.png is untouched too


def test_train_overwrite_replaces_another_run_only_once_the_new_one_finished(ws, capsys, monkeypatch):
    from condsynth.engine import trainer as T
    run = ws.root / "run"
    old = snapshot(run)
    real_fit = T.Trainer.fit

    def failing_fit(self):
        raise UserError("stopped before the first checkpoint")

    monkeypatch.setattr(T.Trainer, "fit", failing_fit)
    argv = tiny_train_args(ws.names["data"], run, steps=2) + ["--overwrite"]
    rc, _, err = run_cli(argv, capsys)
    assert_one_error(rc, err, "stopped before the first checkpoint")
    assert_unchanged(old, snapshot(run))     # the other run is back, nothing of the new one is left
    monkeypatch.setattr(T.Trainer, "fit", real_fit)
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_00000002"]
    assert not (run / ".replaced-run").exists() and not (run / "run.lock").exists()


def test_train_resume_into_its_own_config_yaml(ws, capsys):
    """``condsynth train RUN/config.yaml --resume`` is how a run is continued: allowed."""
    run = ws.root / "run"
    rc, _, err = run_cli(["train", run / "config.yaml", "train.steps=4", f"train.out_dir={run}", "--resume"], capsys)
    assert rc == 0, err
    assert (run / "checkpoints" / "step_00000004").is_dir()


def test_run_lock_refuses_a_second_owner_and_takes_over_a_stale_lock(tmp_path):
    from condsynth.io.runlock import LOCK_NAME, RunLock
    run = tmp_path / "run"
    with RunLock(run):
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        with pytest.raises(UserError, match=f"in use by another condsynth process \\(pid {os.getpid()}"):
            RunLock(run).acquire()
    assert not (run / LOCK_NAME).exists()
    (run / LOCK_NAME).write_text("999999999 somewhere\n")      # a dead owner's file, no flock held
    with RunLock(run):
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())


def test_only_rank_zero_claims_the_run_folder(ws, monkeypatch):
    from condsynth.engine.config import load_experiment_config
    from condsynth.engine.rundir import claim_run_dir
    from hostile_helpers import tiny_train_args as args
    cfg = load_experiment_config(CONFIG, args(ws.names["data"], ws.root / "run")[2:])
    monkeypatch.setenv("RANK", "1")
    with claim_run_dir(cfg) as claimed:        # another run's checkpoints: not rank 1's to judge
        assert claimed is None and not (ws.root / "run" / "run.lock").exists()


def test_environment_errors_are_one_line(ws, capsys, monkeypatch):
    """An OSError of the machine that escapes a writer (ENOSPC from a log file) is one line too."""
    import errno

    from condsynth.cli import export

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(ws.root / "run" / "log.jsonl"))

    monkeypatch.setattr(export, "run_export", full_disk)     # the parser is built per call: it takes this
    rc, _, err = run_cli(["export", "run", "--out", "exp"], capsys)
    assert_one_error(rc, err, "log.jsonl: no space left on the device")


def test_atomic_writes_name_the_output_on_failure(tmp_path):
    from condsynth.io.atomic import atomic_dir, atomic_path
    with pytest.raises(UserError, match="x.bin: cannot write \\(a part of the path is a file"):
        (tmp_path / "f").write_text("a file")
        with atomic_path(tmp_path / "f" / "x.bin"):
            pass
    with pytest.raises(UserError, match="d: cannot write"):
        with atomic_dir(tmp_path / "d") as tmp:
            raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"] and not tmp.exists()


def test_reading_a_checkpoint_leaves_no_file_in_it(ws, capsys):
    before = snapshot(ws.root / "run")
    rc, _, err = run_cli(["translate", "--checkpoint", "run", "photos", "--out", "o"], capsys)
    assert rc == 0, err
    assert_unchanged(before, snapshot(ws.root / "run"))


def test_config_bounds_are_declared_on_the_fields():
    import dataclasses

    from condsynth.engine.config import ScheduleConfig, TrainConfig
    from condsynth.models.pix2pix import Pix2PixConfig
    for cls in (TrainConfig, ScheduleConfig, Pix2PixConfig):
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float"):
                assert f.metadata.get("min") is not None, f"{cls.__name__}.{f.name} has no lower bound"



@pytest.mark.parametrize("override, key", [("model.actor_width=1000000", "model.actor_width"),
                                           ("model.gamma=1.5", "model.gamma"),
                                           ("model.replay_capacity=0", "model.replay_capacity"),
                                           ("data.size=100000", "data.size")])
def test_painting_agent_config_values_are_bounded(override, key, tmp_path, capsys):
    from condsynth.cli.main import main
    config = Path(__file__).resolve().parents[1] / "configs" / "painting" / "agent_small.yaml"
    code = main(["train", str(config), override, f"train.out_dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"condsynth: error: {key}: must be between")
    assert not (tmp_path / "r").exists()
