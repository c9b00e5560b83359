"""One policy for every output path a command writes (``--out``, ``--svg``, ``train.out_dir``, ...).

Checked before any long work starts, so a mistake costs seconds, not a night of training:

* an output is never an input, nor inside an input folder, nor a folder holding an input or the
  run being read (real paths are compared, so symlinks and ``..`` do not get around it); no
  ``--overwrite`` lifts this;
* an existing file, or a non-empty folder, is replaced only with ``--overwrite``, and then only
  once the new output is complete (the writers in :mod:`condsynth.io.atomic` write beside and
  rename);
* a path under a regular file, a folder that cannot be written (permissions, a read-only file
  system) or a device with less free space than a rough lower bound of the output is refused.

Every refusal is a :class:`~condsynth.errors.UserError` naming the path as the user wrote it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Literal

from condsynth.errors import UserError
from condsynth.io.atomic import os_reason

OVERWRITE_HINT = "pass --overwrite to replace it"


def real_path(path: str | Path, what: str | None = None) -> Path:
    """The absolute path with symlinks and ``..`` resolved (the path need not exist)."""
    try:
        return Path(os.path.realpath(os.path.abspath(os.fspath(path)), strict=False))
    except (OSError, RuntimeError, ValueError) as exc:   # a symlink loop, a NUL byte
        reason = "symlink loop" if isinstance(exc, RuntimeError) else os_reason(exc) \
            if isinstance(exc, OSError) else str(exc)
        raise UserError(f"{what or path}: not a usable path ({reason})") from None


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def existing_ancestor(path: Path, shown: str | Path | None = None) -> Path:
    """The nearest existing folder at or above ``path``; a regular file on the way is refused
    (``shown``: the path as the user wrote it, for the message)."""
    for p in (path, *path.parents):
        try:
            st = p.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise UserError(f"{shown or path}: cannot be written ({p}: {os_reason(exc)})") from None
        if stat.S_ISDIR(st.st_mode):
            return p
        if p != path:
            raise UserError(f"{shown or path}: {p} is a file, not a folder")
        # path itself exists and is not a folder: its parent is where the writing happens
    return Path(path.anchor or "/")


def check_writable(path: Path, shown: str | Path, need_bytes: int = 0) -> None:
    """Refuse unless a file can be created in the folder that will hold ``path`` and that
    device has ``need_bytes`` free. A probe file is created and removed at once: permission
    bits alone would pass root on a read-only mount."""
    where = existing_ancestor(path.parent if path.parent != path else path, shown)
    try:
        fd, probe = tempfile.mkstemp(prefix=".condsynth-probe-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{shown}: cannot write in {where} ({os_reason(exc)})") from None
    if need_bytes > 0:
        free = shutil.disk_usage(where).free
        if free < need_bytes:
            raise UserError(f"{shown}: needs at least {human_bytes(need_bytes)} free, only "
                            f"{human_bytes(free)} left on the device of {where}")


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_output(path: str | Path, *, kind: Literal["file", "folder"] = "file",
                 inputs: Iterable[str | Path | None] = (), shallow_inputs: Iterable[str | Path] = (),
                 overwrite: bool = False, merge: bool = False, need_bytes: int = 0, what: str | None = None) -> Path:
    """Check output ``path`` against the policy above and return its real path.

    ``kind='folder'`` with ``merge=True`` is a folder that files are added to (``translate
    --out``): existing other files in it are kept, so a non-empty folder is fine; check the
    names written with :func:`check_new_files`. ``inputs`` are the files and folders the command
    reads (a checkpoint's run folder among them): the output may be none of them, nor inside one.
    ``shallow_inputs`` are folders of which only the files directly inside are read (``translate
    DIR``): the output may not be one of them, but may be a sub-folder. ``what`` names the output in
    messages (default: the path as given).
    """
    shown = what or str(path)
    if not str(path).strip():
        raise UserError(f"{shown}: empty output path")
    p = real_path(path, shown)
    existing_ancestor(p, shown)               # refuses a path under a regular file
    for inp in inputs:
        if inp is None or not str(inp):
            continue
        q = real_path(inp)
        if p == q:
            raise UserError(f"{shown}: is also an input of this command ({inp}); choose another output")
        if q.is_dir() and _is_within(p, q):
            raise UserError(f"{shown}: is inside the input folder {inp}; choose an output outside it")
        if kind == "folder" and not merge and _is_within(q, p):
            raise UserError(f"{shown}: would replace {inp}, an input of this command; choose another output")
    for folder in shallow_inputs:
        if p == real_path(folder):
            raise UserError(f"{shown}: is the folder the inputs are read from; choose another output folder")
    if os.path.lexists(p):                    # a dangling symlink or a symlink loop exists too
        is_dir = p.is_dir()
        if kind == "file":
            if is_dir:
                raise UserError(f"{shown}: is a folder, expected a file name")
            if not p.is_file():
                raise UserError(f"{shown}: exists and is not a regular file")
            if not overwrite:
                raise UserError(f"{shown}: file exists ({OVERWRITE_HINT})")
        elif not is_dir:
            if not overwrite:
                raise UserError(f"{shown}: exists and is a file, not a folder ({OVERWRITE_HINT})")
        elif not merge and not overwrite and any(p.iterdir()):
            raise UserError(f"{shown}: folder exists and is not empty ({OVERWRITE_HINT})")
    check_writable(p / "x" if (merge and p.is_dir()) else p, shown, need_bytes)
    return p


def check_new_files(folder: str | Path, names: Iterable[str], *, inputs: Iterable[str | Path] = (),
                    overwrite: bool = False, what: str | None = None) -> None:
    """Files ``names`` about to be written into ``folder``: none may be an input, and none may
    exist already unless ``overwrite``."""
    folder = real_path(folder, what)
    ins = {real_path(i) for i in inputs}
    for name in names:
        target = folder / name
        if target in ins:
            raise UserError(f"{target}: would replace an input of this command; choose another output folder")
        if target.is_dir():
            raise UserError(f"{target}: is a folder, so the output of that name cannot be written")
        if target.exists() and not overwrite:
            raise UserError(f"{target}: file exists ({OVERWRITE_HINT})")


def check_distinct(outputs: dict[str, str | Path | None]) -> None:
    """Two outputs of one command must not be the same file (``--out x.png --contact-sheet x.png``)."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        p = real_path(path, flag)
        if p in seen:
            raise UserError(f"{path}: given to both {seen[p]} and {flag}; each output needs its own file")
        seen[p] = flag


__all__ = ["check_distinct", "check_new_files", "check_output", "check_writable", "existing_ancestor",
           "human_bytes", "real_path"]
