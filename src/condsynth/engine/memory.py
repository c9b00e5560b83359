"""How much memory a method's networks will take, estimated before a single weight is allocated.

The method is built on PyTorch's ``meta`` device: every module, parameter and buffer gets its
shape and dtype but no storage, so a config asking for a terabyte costs microseconds to count.
A config whose networks cannot fit in the memory available here is refused with one line, instead
of dying in the allocator (or swapping the machine to a halt) minutes later.
"""

from __future__ import annotations

import os

import torch

from condsynth.errors import ConfigError
from condsynth.io.outputs import human_bytes

# Training holds weights, gradients and two Adam moments: four copies of every parameter, before
# activations. Inference holds the weights and the file's tensors they are loaded from.
TRAINING_COPIES = 4
INFERENCE_COPIES = 2


def available_memory() -> int | None:
    """Bytes of RAM available to a new allocation (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def parameter_bytes(method_cls, model_cfg, data_cfg, training: bool = False) -> tuple[int, int] | None:
    """``(bytes, parameter count)`` of the method's parameters and buffers (with the networks of
    ``setup_training`` when ``training``), or None when it cannot be built without data (e.g. a
    loss network read from a weight file): the real construction then reports its own error."""
    try:
        with torch.device("meta"):
            method = method_cls(model_cfg, data_cfg)
            if training:
                method.setup_training()
        tensors = [*method.parameters(), *method.buffers()]
    except Exception:  # noqa: BLE001 - an estimate only; the real build says what is wrong
        return None
    count = sum(t.numel() for t in method.parameters())
    return sum(t.numel() * t.element_size() for t in tensors), count


def check_fits(method_cls, model_cfg, data_cfg, *, training: bool, where: str = "model",
               device: torch.device | None = None) -> int | None:
    """Refuse a config whose networks need more memory than this machine has; return the bytes
    of its parameters (None if unknown)."""
    est = parameter_bytes(method_cls, model_cfg, data_cfg, training)
    if est is None:
        return None
    nbytes, count = est
    need = nbytes * (TRAINING_COPIES if training else INFERENCE_COPIES)
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        have, kind = free, f"free on {device}"
    else:
        have, kind = available_memory(), "of memory available here"
    if have is not None and need > have:
        job = "training" if training else "loading it"
        raise ConfigError(f"{where}: the networks have {count / 1e6:,.1f} M parameters; {job} needs about "
                          f"{human_bytes(need)}, more than the {human_bytes(have)} {kind} "
                          f"(make the networks smaller)")
    return nbytes


__all__ = ["available_memory", "check_fits", "parameter_bytes"]
