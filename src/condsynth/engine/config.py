"""The engine's own config section (``train:``) and the experiment config that binds all four."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from condsynth.config import SEED_MAX, apply_overrides, bounded, from_dict, load_yaml, max_threads, to_dict
from condsynth.errors import ConfigError

MAX_STEPS = 10 ** 12        # steps and step intervals: far beyond any run, well inside 64 bits


@dataclass
class ScheduleConfig:
    """Learning-rate factor over training steps, shared by every optimizer of a method.

    constant: factor 1. linear: 1 for ``constant_steps`` steps, then linear decay to 0 over
    ``decay_steps`` (pix2pix/CycleGAN's "n_epochs + n_epochs_decay"). step: multiply by
    ``gamma`` every ``step_size`` steps. piecewise: factor ``values[i]`` from step
    ``milestones[i-1]`` on (``values`` has one more entry than ``milestones``), e.g. HfGAN's
    1e-3 -> 5e-4 -> 2e-4 is ``milestones: [150*E, 300*E], values: [1, 0.5, 0.2]``.
    """

    kind: Literal["constant", "linear", "step", "piecewise"] = "constant"
    constant_steps: int = bounded(0, 0, MAX_STEPS)
    decay_steps: int = bounded(0, 0, MAX_STEPS)
    step_size: int = bounded(1000, 1, MAX_STEPS)
    gamma: float = bounded(0.1, 0.0, 1e6)
    milestones: list[int] = bounded(min=0, max=MAX_STEPS, factory=list)
    values: list[float] = bounded(min=0.0, max=1e6, factory=list)

    def __post_init__(self):
        if self.kind == "piecewise":
            if len(self.values) != len(self.milestones) + 1:
                raise ValueError("piecewise needs one more value than milestones")
            if list(self.milestones) != sorted(self.milestones):
                raise ValueError("piecewise milestones must be increasing")


@dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    seed: int = bounded(0, 0, SEED_MAX)
    steps: int = bounded(1000, 0, MAX_STEPS)       # optimisation steps in total (one batch each)
    batch_size: int = bounded(1, 1, 65536)         # per process
    num_workers: int = bounded(0, 0, max_threads)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Mixed precision inside the methods' ``ctx.autocast()``: bf16 autocast on CPU and GPU, fp16
    # (with a loss scaler) on GPU only; fp32 on CPU when fp16 is asked. docs/performance.md
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # How optimizers update: "fused" (one kernel per step, CPU and GPU; PyTorch's Adam, AdamW, SGD,
    # Adagrad), "foreach" (multi-tensor ops), "plain" (a loop over parameters) or "auto" (fused
    # where the optimizer has it, else foreach). Fused differs from the loop by float rounding only.
    optimizer_impl: Literal["auto", "fused", "foreach", "plain", "method"] = "auto"
    # Free the gradients of a stepped optimizer just before the next backward pass instead of right
    # after its step (the same arithmetic; on CPU it avoids returning and re-faulting ~100k pages
    # per step with glibc's allocator). "eager": zero_grad(set_to_none=True) after each step.
    zero_grad: Literal["lazy", "eager"] = "lazy"
    # "tuned": on Linux with glibc, keep freed memory in the process (no mmap per large tensor, no
    # trimming) so that each step's activations and gradients reuse pages instead of faulting in
    # fresh ones (process-wide; the process keeps its peak memory). "default": glibc's own policy.
    cpu_allocator: Literal["tuned", "default"] = "tuned"
    grad_clip: float = bounded(0.0, 0.0, None)    # max global grad norm per optimizer; 0 disables
    ema_decay: float = bounded(0.0, 0.0, 1.0)     # EMA of Method.ema_networks; 0 disables
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint_every: int = bounded(500, 1, MAX_STEPS)   # steps; a final checkpoint is always written
    keep_checkpoints: int = bounded(2, 0, 100_000)       # newest checkpoints kept on disk (0: all)
    log_every: int = bounded(10, 1, MAX_STEPS)           # steps between scalar logs
    image_every: int = bounded(200, 0, MAX_STEPS)        # steps between image grids (0 disables)
    eval_every: int = bounded(0, 0, MAX_STEPS)           # steps between held-out evaluations (0 disables)
    eval_batches: int = bounded(4, 0, 1_000_000)
    progress: bool = True
    threads: int = bounded(0, 0, max_threads)   # torch intra-op threads on CPU; 0 keeps torch's default
    # Flush subnormal floats to zero on CPU. Trained weights and Adam moments drift into the
    # subnormal range, and x86 arithmetic on them is slow: the painting renderer ran 3x slower
    # per step after 2,000 steps without it. Numerically invisible (values below 1.2e-38).
    flush_denormal: bool = True
    deterministic: bool = False     # torch.use_deterministic_algorithms
    # Warm start (staged recipes: pix2pixHD global -> local, a lip reader before AVWnet): at step
    # 0, copy the weights of another run / checkpoint / export into the networks that exist in
    # both (``init_networks`` limits which). ``init_strict``: every chosen network must fit exactly.
    init_from: Optional[str] = None
    init_networks: list[str] = field(default_factory=list)
    init_strict: bool = True

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError("steps must be >= 0 and batch_size >= 1")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("checkpoint_every and log_every must be >= 1")


@dataclass
class ExperimentConfig:
    method: str
    model: Any
    data: Any
    train: TrainConfig

    def to_dict(self) -> dict:
        return {"method": self.method, "model": to_dict(self.model), "data": to_dict(self.data),
                "train": to_dict(self.train)}


def build_experiment_config(raw: dict) -> ExperimentConfig:
    """Resolve the method, then type-check each section against its dataclass."""
    from condsynth.models import get_method_class

    raw = dict(raw)
    unknown = sorted(set(raw) - {"method", "model", "data", "train"})
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}' (known keys here: data, method, model, train)")
    if "method" not in raw:
        raise ConfigError("config key 'method' is required (e.g. method: pix2pix)")
    method_cls = get_method_class(str(raw["method"]))
    return ExperimentConfig(
        method=str(raw["method"]),
        model=from_dict(method_cls.ModelConfig, raw.get("model") or {}, prefix="model."),
        data=from_dict(method_cls.DataConfig, raw.get("data") or {}, prefix="data."),
        train=from_dict(TrainConfig, raw.get("train") or {}, prefix="train."),
    )


# train.* keys that may change on --resume without changing what is learned
RESUME_FREE_KEYS = {"train.out_dir", "train.steps", "train.progress", "train.log_every", "train.image_every",
                    "train.eval_every", "train.eval_batches", "train.checkpoint_every", "train.keep_checkpoints", "train.threads",
                    "train.num_workers", "train.device", "train.init_from", "train.init_networks",
                    "train.zero_grad", "train.cpu_allocator"}


def config_diff(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` for every value that differs between two config dicts."""
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((f"{prefix}{k}", a, b))
    return out


def load_experiment_config(path: str | Path | None, overrides: list[str] = ()) -> ExperimentConfig:
    raw = load_yaml(path) if path is not None else {}
    apply_overrides(raw, list(overrides))
    return build_experiment_config(raw)
