"""Claiming a run folder (``train.out_dir``) before training starts.

:func:`claim_run_dir` is what :func:`condsynth.engine.trainer.train` runs inside. Before a
network is built it checks the config against this machine (the device exists, the networks fit
in memory) and the run folder against the output policy of :mod:`condsynth.io.outputs` (not inside
the dataset, not under a file, writable, room for a checkpoint). Then it locks the folder for this
process (:class:`~condsynth.io.runlock.RunLock`; rank 0 only under DDP) and, for a start from
step 0, refuses a folder that holds another run (its checkpoints, logs or config) unless
``overwrite``. With ``overwrite`` the other run is moved aside and deleted only once the new run
has finished; if the new run fails before its first checkpoint, the other run is put back (after
that, it stays in ``RUN/.replaced-run/`` beside the new run's checkpoints).
"""

from __future__ import annotations

import contextlib
import os
import shutil

from condsynth.config import check_device, to_dict
from condsynth.engine.memory import check_fits
from condsynth.errors import ConfigError, UserError
from condsynth.io.atomic import remove_path
from condsynth.io.checkpoint import find_latest
from condsynth.io.outputs import check_output
from condsynth.io.runlock import RunLock

# What a training run writes into its folder (engine.trainer, engine.logging).
RUN_ENTRIES = ("checkpoints", "config.yaml", "log.jsonl", "tb", "images")
ASIDE = ".replaced-run"


def is_main_process() -> bool:
    """Rank 0 under torchrun (RANK), or a plain process; known before Accelerate starts."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def read_paths(cfg) -> list[str]:
    """The files and folders a config reads: string values of its data and model sections that
    name something on disk (data.root, data.bank, a pretrained renderer, ...)."""
    out = []
    for section in (cfg.data, cfg.model):
        for value in to_dict(section).values() if section is not None else ():
            if isinstance(value, str) and value and "\0" not in value and os.path.lexists(value):
                out.append(value)
    return out


def _method_class(cfg):
    from condsynth.models import get_method_class
    return get_method_class(cfg.method)


@contextlib.contextmanager
def claim_run_dir(cfg, resume: bool = False, overwrite: bool = False):
    tc = cfg.train
    if not str(tc.out_dir).strip():
        raise ConfigError("train.out_dir: must name a folder, got an empty string")
    device = check_device(tc.device, "train.device")
    nbytes = check_fits(_method_class(cfg), cfg.model, cfg.data, training=True, device=device)
    if not is_main_process():
        yield None
        return
    run = check_output(tc.out_dir, kind="folder", merge=True, inputs=read_paths(cfg),
                       need_bytes=3 * (nbytes or 0))       # weights + Adam moments: one checkpoint
    with RunLock(run):
        present = [name for name in RUN_ENTRIES if os.path.lexists(run / name)]
        aside = run / ASIDE
        if resume or not present:
            yield run
            return
        if not overwrite:
            latest = find_latest(run)
            what = f"the checkpoints of another run (newest: {latest.name})" if latest is not None else \
                f"another run's {', '.join(present)}"
            raise UserError(f"{tc.out_dir}: holds {what}; pass --resume to continue it, --overwrite to "
                            f"replace it, or choose another train.out_dir")
        if os.path.lexists(aside):
            shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir()
        for name in present:
            os.replace(run / name, aside / name)
        try:
            yield run
        except BaseException:
            if find_latest(run) is None:      # nothing of the new run worth keeping: put the old one back
                for name in RUN_ENTRIES:
                    if os.path.lexists(aside / name):
                        remove_path(run / name)
                        os.replace(aside / name, run / name)
                shutil.rmtree(aside, ignore_errors=True)
            raise
        shutil.rmtree(aside, ignore_errors=True)


__all__ = ["RUN_ENTRIES", "claim_run_dir", "is_main_process", "read_paths"]
