"""Hostile conditions that need other processes or mounts: kill -9 in the middle of every kind of
write, two trainings into one run folder, a full disk, a read-only disk, an unwritable folder.

The full and read-only disks are small tmpfs mounts (root on Linux); where the machine does not
allow a mount those cases are skipped, and the free-space and writability checks are still
covered by test_hostile.py through a file in the way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_helpers import (ROOT, assert_one_error, assert_unchanged, expect_error, mount_tmpfs, run_cli, save_png,
                             snapshot, tiny_run, tiny_train_args, unmount)

__all__ = ["tiny_run"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------------- kill -9 during a write

SLOW_WRITER = r"""
import sys, time
from pathlib import Path
from condsynth.io.atomic import atomic_dir, atomic_files, atomic_path
kind, target = sys.argv[1], Path(sys.argv[2])
def slow(path):
    with open(path, "wb") as fh:
        for _ in range(200):
            fh.write(b"x" * 65536); fh.flush()
            print("writing", flush=True); time.sleep(0.05)
if kind == "file":
    with atomic_path(target) as tmp:
        slow(tmp)
elif kind == "folder":
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}"); slow(tmp / "model.safetensors")
else:
    with atomic_files(target) as tmp:
        (tmp / "a.png").write_text("new"); slow(tmp / "b.png")
"""


@pytest.mark.parametrize("kind", ["file", "folder", "files"])
def test_kill9_during_an_atomic_write_keeps_the_old_output(kind, tmp_path):
    """The output being replaced (a file, an export folder, a folder of translations) is the old one,
    whole, after a SIGKILL in the middle of writing the new one."""
    target = tmp_path / ("out.bin" if kind == "file" else "out")
    if kind == "file":
        target.write_bytes(b"old")
    else:
        target.mkdir()
        (target / "a.png").write_text("old")
    before = snapshot(target) if target.is_dir() else target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, kind, str(target)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV, text=True)
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    kill9(proc)
    if kind == "file":
        assert target.read_bytes() == before
    else:   # a SIGKILL leaves the new output's hidden temporary (beside, or inside for a folder of files)
        assert_unchanged(before, {k: v for k, v in snapshot(target).items() if "/." not in k})
    leftovers = [p.name for p in [*target.parent.iterdir(), *(target.iterdir() if target.is_dir() else [])]
                 if p.name.startswith(".")]
    assert all(".tmp" in name for name in leftovers), leftovers


def test_kill9_during_data_synth_leaves_no_dataset(tmp_path):
    out = tmp_path / "scenes"
    proc = subprocess.Popen([sys.executable, "-m", "condsynth", "data", "synth", "scenes", "--out", str(out), "--n",
                             "3000", "--size", "32", "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=ENV)
    started = wait_for(lambda: any(p.name.startswith(".scenes.") and any(p.rglob("*.png"))
                                   for p in tmp_path.iterdir()), proc)
    assert started, proc.stderr.read() if proc.poll() is not None else "no temporary folder appeared"
    kill9(proc)
    assert not out.exists()


def test_kill9_during_translate_leaves_no_half_written_output(tiny_run, tmp_path):
    for i in range(150):
        save_png(tmp_path / "photos" / f"{i:03d}.png", 96, 96, seed=i)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    before = snapshot(tmp_path / "out")
    proc = subprocess.Popen([sys.executable, "-m", "condsynth", "translate", "--checkpoint", str(tiny_run),
                             str(tmp_path / "photos"), "--out", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    staged = lambda: any(any(p.glob("*.png")) for p in (tmp_path / "out").glob(".*") if p.is_dir())  # noqa: E731
    assert wait_for(staged, proc), proc.stderr.read() if proc.poll() is not None else "nothing was staged"
    kill9(proc)
    assert visible(tmp_path / "out") == ["keep.txt"]
    after = {k: v for k, v in snapshot(tmp_path / "out").items() if "/." not in k}
    assert_unchanged(before, after)


# ------------------------------------------------------------------- two trainings, one folder

def test_two_trainings_into_one_run_folder(scenes16, tmp_path, capsys):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "condsynth", *tiny_train_args(scenes16, run, steps=5000)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        lock = run / "run.lock"
        assert wait_for(lambda: lock.is_file() and lock.read_text().strip(), first), \
            first.stderr.read() if first.poll() is not None else "no lock"
        for extra in ([], ["--resume"], ["--overwrite"]):
            rc, _, err = run_cli(tiny_train_args(scenes16, run, steps=2) + extra, capsys)
            assert_one_error(rc, err, f"{run}: in use by another condsynth process (pid {first.pid}")
        assert first.poll() is None                      # the owner trains on, undisturbed
    finally:
        kill9(first)
    assert lock.exists()                                 # a stale lock: its owner died by SIGKILL
    rc, out, err = run_cli(tiny_train_args(scenes16, run, steps=1) + ["--resume"], capsys)
    assert rc == 0, err
    assert not lock.exists()


# ------------------------------------------------------------------- full and read-only disks

@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    if not mount_tmpfs(mnt, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    yield mnt
    unmount(mnt)


@pytest.fixture
def read_only_disk(tmp_path):
    mnt = tmp_path / "ro"
    if not mount_tmpfs(mnt, "1m", read_only=True):
        pytest.skip("cannot mount a read-only tmpfs here (needs root on Linux)")
    yield mnt
    unmount(mnt)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill the disk, leaving about ``leave`` bytes."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * max(0, free - leave))
        except OSError:
            pass


def random_photos(folder: Path, n: int, side: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 255, (side, side, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")
    return folder


def test_full_disk_in_the_middle_of_writing(small_disk, tiny_run, tmp_path, capsys):
    """Each write runs out of space part-way: one line naming the output, nothing left on the disk."""
    photos = random_photos(tmp_path / "photos", 24, 256)     # translated, ~60 kB each: more than the disk holds
    cases = [
        (["data", "synth", "scenes", "--out", small_disk / "scenes", "--n", "400", "--size", "64", "--no-progress"],
         f"{small_disk / 'scenes'}: cannot write (no space left on the device)"),
        (["translate", "--checkpoint", tiny_run, photos, "--out", small_disk / "tr"],
         f"{small_disk / 'tr'}/"),
    ]
    for argv, fragment in cases:
        expect_error(argv, capsys, fragment, "no space left on the device", watch=(small_disk, tiny_run, photos))
        assert os.listdir(small_disk) == []
    fill(small_disk, leave=0)
    expect_error(["eval", "psnr", photos, photos, "--out", small_disk / "r.json"], capsys,
                 "r.json: cannot write (no space left on the device)", watch=(small_disk, photos))


def test_full_disk_before_the_work_starts(small_disk, tiny_run, scenes16, capsys):
    fill(small_disk, leave=20_000)
    watch = (small_disk, tiny_run)
    expect_error(["export", tiny_run, "--out", small_disk / "exp"], capsys, "exp: needs at least", "free", watch=watch)
    expect_error(tiny_train_args(scenes16, small_disk / "run"), capsys, "run: needs at least", watch=watch)
    expect_error(["data", "strokes", "--out", small_disk / "b.safetensors", "--n", "50", "--size", "64"], capsys,
                 "b.safetensors: needs at least", watch=watch)


def test_read_only_disk(read_only_disk, tiny_run, scenes16, tmp_path, capsys):
    photos = random_photos(tmp_path / "photos", 2, 16)
    watch = (tiny_run, photos)
    reason = "read-only file system"
    expect_error(["export", tiny_run, "--out", read_only_disk / "exp"], capsys, reason, watch=watch)
    expect_error(["translate", "--checkpoint", tiny_run, photos, "--out", read_only_disk / "o"], capsys, reason,
                 watch=watch)
    expect_error(tiny_train_args(scenes16, read_only_disk / "run"), capsys, reason, watch=watch)
    expect_error(["eval", "psnr", photos, photos, "--out", read_only_disk / "r.json"], capsys, reason, watch=watch)
    expect_error(["data", "synth", "scenes", "--out", read_only_disk / "d", "--n", "3"], capsys, reason, watch=watch)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits (the read-only disk covers it)")
def test_unwritable_folder(tiny_run, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        expect_error(["export", tiny_run, "--out", locked / "exp"], capsys, "permission denied", watch=(tiny_run,))
    finally:
        locked.chmod(0o700)

