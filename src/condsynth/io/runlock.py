"""A run folder is owned by one process: ``RUN/run.lock`` holds the owner's process id.

    with RunLock(run_dir):          # a second process gets a UserError naming the owner's pid
        trainer.fit()

The lock is an ``fcntl.flock`` on that file, so the kernel releases it when the owner dies, even
by ``kill -9``: a lock file left behind by a dead process (a *stale* lock) is simply taken over.
The file is removed when the owner leaves the block. A lock on a file that another process
removed at the same moment is detected (the inode changed) and taken again.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from condsynth.errors import UserError
from condsynth.io.atomic import os_reason

LOCK_NAME = "run.lock"


def _read_owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", "replace").split()
    except OSError:
        return "another process"
    return f"pid {text[0]}" + (f" on {text[1]}" if len(text) > 1 else "") if text else "another process"


class RunLock:
    """Exclusive ownership of ``run_dir`` while the block runs; ``enabled=False`` is a no-op (DDP
    ranks other than 0)."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, what: str = "train.out_dir"):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.enabled = enabled
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{self.run_dir}: cannot create the run folder ({os_reason(exc)})") from None
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise UserError(f"{self.path}: cannot create the run's lock file ({os_reason(exc)})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_owner(fd)
                os.close(fd)
                raise UserError(f"{self.run_dir}: in use by another condsynth process ({owner}); wait for it "
                                f"to finish or choose another {self.what}") from None
            except OSError as exc:
                os.close(fd)
                raise UserError(f"{self.path}: cannot lock the run folder ({os_reason(exc)})") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:        # the previous owner removed the file between our open and flock
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self.fd = fd
            return
        raise UserError(f"{self.path}: could not take the run's lock (it keeps being replaced)")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)        # while still holding the lock: nobody holds a removed file
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "RunLock":
        if self.enabled:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["LOCK_NAME", "RunLock"]
