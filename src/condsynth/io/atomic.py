"""Atomic outputs: a file or folder appears complete under its final name, or not at all.

Everything is written to a temporary sibling first and renamed into place, so a crash, a
SIGKILL or a user's Ctrl-C never leaves a half-written checkpoint or image behind. A write that
fails for a reason of the machine (a full disk, no permission, a read-only file system) is one
:class:`~condsynth.errors.UserError` naming the output, and the temporary is removed. Every output
gets the permissions a plain ``open()``/``mkdir()`` would give under the umask.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from condsynth.errors import UserError

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


def os_reason(exc: OSError) -> str:
    """A short reason for an OSError, without the path (the caller names the file)."""
    return _REASONS.get(exc.errno, exc.strerror or type(exc).__name__)


def write_failure(exc: OSError, final: str | Path) -> UserError:
    # EEXIST comes from creating the parent folders where a file has the folder's name
    reason = _REASONS[errno.ENOTDIR] if exc.errno == errno.EEXIST else os_reason(exc)
    return UserError(f"{final}: cannot write ({reason}); nothing was written there")


def _default_mode(is_dir: bool) -> int:
    """The permissions a plain open()/mkdir() would give under the current umask (mkstemp and
    mkdtemp create private 0600/0700 entries, which would make outputs unreadable to others)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if is_dir else 0o666) & ~umask


def remove_path(path: Path) -> None:
    """Remove a file or folder, never following a symlink, ignoring what is already gone."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(final: str | Path):
    """Yield a temporary path next to ``final``; rename it onto ``final`` if the block succeeds."""
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
        os.close(fd)
    except OSError as exc:
        raise write_failure(exc, final) from None
    tmp = Path(tmp)
    try:
        yield tmp
        # after the writer: some (safetensors) replace the file and give it 0600
        os.chmod(tmp, _default_mode(False))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        raise write_failure(exc, final) from None
    finally:
        if tmp.exists():
            remove_path(tmp)


def atomic_write_text(final: str | Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _temp_dir(final: Path) -> Path:
    """A new, empty temporary folder beside ``final``, with the umask's permissions."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        os.chmod(tmp, _default_mode(True))
    except OSError as exc:
        raise write_failure(exc, final) from None
    return tmp


@contextlib.contextmanager
def atomic_dir(final: str | Path):
    """Yield a temporary folder; on success it replaces ``final`` (an old one is removed)."""
    final = Path(final)
    tmp = _temp_dir(final)
    try:
        yield tmp
        if final.exists() or final.is_symlink():
            old = final.with_name(f".{final.name}.old")
            remove_path(old)
            os.replace(final, old)
            os.replace(tmp, final)
            remove_path(old)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        raise write_failure(exc, final) from None
    except UserError as exc:        # a nested atomic write failed: name the output, not the temporary
        raise UserError(str(exc).replace(str(tmp), str(final))) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_files(folder: str | Path):
    """Yield a temporary folder beside ``folder``; when the block succeeds, the files written into
    it move into ``folder`` (the whole temporary becomes ``folder`` if there is none yet). Other
    files already in ``folder`` are kept; one of the same name is replaced, so check for those
    first (:func:`condsynth.io.outputs.check_new_files` does). If the block fails, ``folder`` is
    untouched."""
    folder = Path(folder)
    # inside an existing folder (the moves stay in it), else beside it
    tmp = _temp_dir(folder / ".condsynth-new" if folder.is_dir() else folder)
    try:
        yield tmp
        if not folder.exists():
            os.replace(tmp, folder)
        else:
            for entry in sorted(tmp.iterdir()):
                os.replace(entry, folder / entry.name)
    except OSError as exc:
        raise write_failure(exc, folder) from None
    except UserError as exc:
        raise UserError(str(exc).replace(str(tmp), str(folder))) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
