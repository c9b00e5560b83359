"""Shared pieces of the hostile-input suite (tests/test_hostile*.py).

Every hostile case asserts the same four things: a non-zero exit, stderr that is exactly one line
``condsynth: error: ...`` naming the file or the dotted key at fault, no traceback, and nothing of
the user's changed: every file under the watched folders keeps its bytes, mode and mtime, and no
file appears or disappears (temporaries included).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from condsynth.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs/pix2pix/scenes64.yaml")


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry under ``roots``: (kind, mode, content hash, mtime) for files, the target for
    symlinks. Folders count by existence and mode only (a probe file changes their mtime)."""
    out: dict[str, tuple] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    out[p] = ("link", os.readlink(p))
                elif stat.S_ISDIR(st.st_mode):
                    out[p] = ("dir", st.st_mode)
                elif stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as fh:
                        digest = hashlib.sha1(fh.read()).hexdigest()
                    out[p] = ("file", st.st_mode, digest, st.st_mtime_ns)
                else:
                    out[p] = ("other", st.st_mode)
    return out


def assert_unchanged(before: dict, after: dict) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"added {added[:5]}, removed {removed[:5]}, changed {changed[:5]}"


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``condsynth ARGV`` in this process: (exit code, stdout, stderr). Argparse's exits count."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error(rc: int, err: str, *fragments: str) -> str:
    assert rc != 0, "the command succeeded"
    assert "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"stderr is not one line: {lines}"
    assert lines[0].startswith("condsynth: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def expect_error(argv, capsys, *fragments: str, watch=()) -> str:
    """Run a hostile command: one error line with ``fragments``, nothing under ``watch`` changed."""
    before = snapshot(*watch)
    rc, _, err = run_cli(argv, capsys)
    line = assert_one_error(rc, err, *fragments)
    assert_unchanged(before, snapshot(*watch))
    return line


def run_subprocess(argv: list[str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "condsynth", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


def save_png(path: Path, h: int = 16, w: int = 16, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def tiny_train_args(data_root, out_dir, steps=3, **extra) -> list[str]:
    from conftest import tiny_pix2pix_overrides
    return ["train", CONFIG, *tiny_pix2pix_overrides(data_root, out_dir, steps=steps, **extra)]


@pytest.fixture(scope="module")
def tiny_run(scenes16, tmp_path_factory):
    """A 3-step pix2pix run (checkpoints/step_00000003 with training state)."""
    run = tmp_path_factory.mktemp("hostile") / "run"
    assert main(tiny_train_args(scenes16, run)) == 0
    return run


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


def mount_tmpfs(path: Path, size: str = "1m", read_only: bool = False) -> bool:
    """Mount a small tmpfs at ``path`` (root on Linux); False where the machine does not allow it."""
    path.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        return False
    if read_only and subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True).returncode:
        unmount(path)
        return False
    return True


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
