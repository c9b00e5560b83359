"""The one training loop every method runs in.

``train(cfg)`` builds the method named by the config, places it (CPU or GPU), wraps its networks
for distributed data parallel when launched by ``torchrun`` (through Hugging Face Accelerate,
gloo on CPU, NCCL on GPU), and repeats ``method.training_step`` on batches from a resumable
sampler. Around the step it handles mixed precision (bf16 autocast on CPU and GPU, fp16 on GPU),
the optimizers' implementation (fused by default), gradient clipping, LR
schedules, an optional EMA of the generators, NaN/Inf detection, TensorBoard + JSONL logs,
image grids, periodic atomic checkpoints and exact resume.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from condsynth.engine import checkpoint as ckpt
from condsynth.engine.config import (RESUME_FREE_KEYS, ExperimentConfig, ScheduleConfig, build_experiment_config,
                                     config_diff)
from condsynth.engine.logging import RunLogger
from condsynth.engine.rundir import claim_run_dir
from condsynth.engine.sampling import ResumableSampler
from condsynth.errors import CheckpointError, ConfigError, TrainingDiverged, UserError
from condsynth.io.atomic import atomic_write_text
from condsynth.models import get_method_class
from condsynth.models.base import StepContext


def lr_factor(schedule: ScheduleConfig):
    """Multiplier of the base LR at a given step (LambdaLR's contract)."""
    if schedule.kind == "constant":
        return lambda step: 1.0
    if schedule.kind == "piecewise":
        import bisect
        return lambda step: schedule.values[bisect.bisect_right(schedule.milestones, step)]
    if schedule.kind == "linear":
        def linear(step: int) -> float:
            if step < schedule.constant_steps:
                return 1.0
            if schedule.decay_steps <= 0:
                return 1.0
            return max(0.0, 1.0 - (step - schedule.constant_steps) / float(schedule.decay_steps))
        return linear
    return lambda step: schedule.gamma ** (step // max(schedule.step_size, 1))


def move_to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(tuple(state["numpy"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def set_optimizer_impl(opt: torch.optim.Optimizer, impl: str) -> str:
    """Switch an optimizer between its fused, foreach and plain (per-parameter loop) updates by
    setting the ``fused``/``foreach`` flags of its parameter groups (``train.optimizer_impl``).
    "auto"/"fused": fused where the class has it (Adam, AdamW, SGD, Adagrad) and every parameter
    is a floating-point tensor on a device with fused kernels, else foreach. Returns what it chose."""
    if impl == "method":
        return "method"
    groups = opt.param_groups
    has_fused = "fused" in opt.defaults
    has_foreach = "foreach" in opt.defaults
    if impl in ("auto", "fused"):
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
        devices = set(_get_fused_kernels_supported_devices())
        can_fuse = has_fused and not opt.defaults.get("differentiable", False) and all(
            p.is_floating_point() and p.device.type in devices for g in groups for p in g["params"])
        impl = "fused" if can_fuse else "foreach"
    if impl == "foreach" and not has_foreach:
        impl = "plain"
    for g in groups:
        if has_fused:
            g["fused"] = impl == "fused"
        if has_foreach:
            g["foreach"] = impl == "foreach"
    if impl == "fused":     # what torch.optim sets when built with fused=True (the GradScaler's contract)
        opt._step_supports_amp_scaling = True
    return impl


def tune_cpu_allocator() -> bool:
    """glibc malloc serves tensors above a (dynamic) threshold with fresh mmap pages and returns
    freed memory at the heap top to the kernel, so a training step of a large model page-faults
    in ~100k pages per step. Serve everything from the heap and never trim it (``train.cpu_allocator``).
    Returns whether it applied (Linux with glibc only)."""
    import ctypes
    import sys
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    last_checkpoint: Path | None
    last_losses: dict


class Trainer:
    def __init__(self, cfg: ExperimentConfig):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.cfg = cfg
        tc = cfg.train
        if tc.threads > 0:
            torch.set_num_threads(tc.threads)
        torch.set_flush_denormal(tc.flush_denormal)     # see TrainConfig.flush_denormal
        if tc.cpu_allocator == "tuned":
            tune_cpu_allocator()
        if tc.deterministic:
            torch.use_deterministic_algorithms(True)
        want_cuda = tc.device == "cuda" or (tc.device == "auto" and torch.cuda.is_available())
        if tc.device == "cuda" and not torch.cuda.is_available():
            raise UserError("train.device=cuda, but no CUDA device is available (use train.device=cpu or auto)")
        precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[tc.precision] if want_cuda else "no"
        self.acc = Accelerator(cpu=not want_cuda, mixed_precision=precision)
        self.device = self.acc.device
        # ctx.autocast(): Accelerate's on GPU; on CPU bf16 autocast (losses, reductions and
        # normalisation stay fp32 by autocast's own op lists) or nothing
        if not want_cuda and tc.precision == "bf16":
            self.autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
            if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
                warnings.warn("train.precision=bf16: this CPU has no bf16 instructions (AVX512-BF16 or AMX); "
                              "bf16 convolutions and matmuls run 10-100x slower than fp32 here (docs/performance.md)")
        elif not want_cuda:
            self.autocast = contextlib.nullcontext
        else:
            self.autocast = self.acc.autocast
        self.is_main = self.acc.is_main_process
        self.run_dir = Path(tc.out_dir)

        # Same seed on every rank while building the networks, so DDP starts from identical weights.
        set_seed(tc.seed)
        method_cls = get_method_class(cfg.method)
        self.method = method_cls(cfg.model, cfg.data)
        self.method.setup_training()
        self.method.to(self.device)
        # pretrained parts from other runs: loaded, never trained, stored by reference
        self.frozen_records = ckpt.load_frozen_parts(self.method, self.device)
        self.nets = self.method.networks()
        self.optimizers = self.method.configure_optimizers(tc)
        self.optimizer_impl = {n: set_optimizer_impl(o, tc.optimizer_impl) for n, o in self.optimizers.items()}
        self.schedulers = {name: LambdaLR(opt, lr_factor(tc.schedule)) for name, opt in self.optimizers.items()}
        self.ema = {}
        if tc.ema_decay > 0:
            for name in self.method.ema_networks:
                self.ema[name] = AveragedModel(self.nets[name], multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay),
                                               use_buffers=True)

        trainable = [n for n, m in self.nets.items() if any(p.requires_grad for p in m.parameters())]
        wrapped = self.acc.prepare(*[self.nets[n] for n in trainable]) if trainable else ()
        if len(trainable) == 1:
            wrapped = (wrapped,)
        self.wrapped = {**self.nets, **dict(zip(trainable, wrapped))}
        opt_names = list(self.optimizers)
        prepared = self.acc.prepare(*[self.optimizers[n] for n in opt_names]) if opt_names else ()
        if len(opt_names) == 1:
            prepared = (prepared,)
        self.prepared_opts = dict(zip(opt_names, prepared))
        self._stale_grads: set[str] = set()     # stepped optimizers whose gradients are not yet freed

        self.dataset = self.method.build_dataset("train")
        # built now, so that a missing eval split is an error before training, not a silent skip
        self.eval_dataset = self.method.build_dataset("eval") if tc.eval_every else None
        n = len(self.dataset)
        need = tc.batch_size * self.acc.num_processes
        if n < need:
            raise UserError(f"the training set has {n} items, fewer than one batch across processes ({need})")
        self.sampler = ResumableSampler(n, seed=tc.seed, shuffle=True, rank=self.acc.process_index,
                                        world_size=self.acc.num_processes)
        self.steps_per_epoch = self.sampler.per_rank() // tc.batch_size
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.last_checkpoint: Path | None = None
        self.logger = RunLogger(self.run_dir, self.is_main)
        # Per-rank randomness (dropout, noise) after the identical init.
        torch.manual_seed(tc.seed + 7919 * self.acc.process_index)

    # ---------------------------------------------------------------- checkpoints
    def _weights(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, net in self.nets.items():
            for k, v in net.state_dict().items():
                out[f"{name}.{k}"] = v
        for name, ema in self.ema.items():   # without the AveragedModel wrapper's "module." level
            for k, v in ema.state_dict().items():
                out[f"ema.{name}.{k.removeprefix('module.')}"] = v
        return out

    def _sync_buffers(self) -> None:
        """DDP broadcasts buffers (BatchNorm statistics) from rank 0 at the start of each forward,
        so after the last forward they differ by one update; make every rank hold rank 0's."""
        if self.acc.num_processes > 1:
            import torch.distributed as dist
            for net in self.nets.values():
                for buf in net.buffers():
                    dist.broadcast(buf, src=0)

    def save(self) -> Path | None:
        self.method.on_before_save()
        self._sync_buffers()
        if self.is_main:
            state = {
                "method": self.method.extra_state(),
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
                "rng": rng_state(),
                "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            }
            meta = {"config": self.cfg.to_dict(), "epoch": self.epoch, "config_version": 1,
                    "networks": list(self.nets), "ema": list(self.ema), "frozen": self.frozen_records}
            self.last_checkpoint = ckpt.save_training_checkpoint(self.run_dir, self.step, meta, self._weights(),
                                                                 state, keep=self.cfg.train.keep_checkpoints)
        self.acc.wait_for_everyone()
        return self.last_checkpoint

    def resume(self, allow_config_change: bool = False) -> bool:
        folder = ckpt.find_latest(self.run_dir)
        if folder is None:
            return False
        meta, weights, state = ckpt.load_training_checkpoint(folder)
        if meta["config"].get("method") != self.cfg.method:
            raise UserError(f"{folder}: checkpoint of method '{meta['config'].get('method')}', "
                            f"this config trains '{self.cfg.method}'")
        self._check_config_change(folder, meta, allow_config_change)
        for name, net in self.nets.items():
            ckpt.load_module_weights(net, ckpt.subdict(weights, f"{name}."), str(folder))
        for name, ema in self.ema.items():
            own = ckpt.ema_weights(weights, name)
            ema_state = {f"module.{k}": v for k, v in own.items()}
            ema_state["n_averaged"] = weights.get(f"ema.{name}.n_averaged",
                                                  weights.get(f"ema.{name}.module.n_averaged"))
            ckpt.load_module_weights(ema, ema_state, str(folder))
        if "method" in state:
            self.method.load_extra_state(state["method"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            set_optimizer_impl(opt, self.cfg.train.optimizer_impl)  # the saved groups carry the old flags
        for name, sch in self.schedulers.items():
            sch.load_state_dict(state["schedulers"][name])
        self.step = int(meta["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        if self.acc.num_processes == 1:
            set_rng_state(state["rng"])
        else:  # only rank 0's RNG is saved; others restart their streams from the step
            torch.manual_seed(self.cfg.train.seed + 7919 * self.acc.process_index + self.step)
        self.last_checkpoint = folder
        return True

    def _check_config_change(self, folder: Path, meta: dict, allow: bool) -> None:
        """A resumed run continues the checkpoint's experiment: say every value that differs
        (the YAML or a default may have changed since), and refuse the ones that change what is
        learned unless the user accepts them."""
        try:    # read the old config with today's schema: a key added since, at its default, is no change
            old = build_experiment_config(meta["config"]).to_dict()
        except ConfigError as exc:
            raise CheckpointError(f"{folder / 'config.json'}: {exc}") from None
        diff = config_diff(old, self.cfg.to_dict())
        for name, old in (meta.get("frozen") or {}).items():
            new = self.frozen_records.get(name, {})
            if old.get("sha256") != new.get("sha256"):
                diff.append((f"frozen {name} ({new.get('path', old.get('path'))}) sha256",
                             str(old.get("sha256"))[:12], str(new.get("sha256"))[:12]))
        if not diff:
            return
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diff)
        binding = [k for k, _, _ in diff if k not in RESUME_FREE_KEYS]
        if binding and not allow:
            raise ConfigError(f"{folder}: the config differs from the checkpoint's ({listed}); "
                              f"pass --allow-config-change to resume with the new values")
        if self.is_main:
            print(f"resuming with config changes: {listed}", flush=True)

    def init_from(self) -> None:
        """``train.init_from``: warm-start matching networks from another run (step 0 only)."""
        tc = self.cfg.train
        folder, _, weights = ckpt.open_checkpoint(ckpt.resolve_checkpoint(tc.init_from)) \
            if not (Path(tc.init_from) / "pipeline.json").is_file() else (Path(tc.init_from), None, None)
        if weights is None:     # an export: one component per network
            weights = {}
            for sub in folder.iterdir():
                if (sub / "model.safetensors").is_file():
                    weights.update(ckpt.load_tensors(sub / "model.safetensors"))
        wanted = list(tc.init_networks) or list(self.nets)
        loaded = []
        for name in wanted:
            if name not in self.nets:
                raise ConfigError(f"train.init_networks: '{name}' is not a network of {self.cfg.method} "
                                  f"({', '.join(self.nets)})")
            part = ckpt.subdict(weights, f"{name}.")
            if part:
                part = self.method.init_weights_for(name, part)
            if not part:
                if tc.init_strict and tc.init_networks:
                    raise CheckpointError(f"{folder}: has no weights for network '{name}'")
                continue
            if tc.init_strict:
                ckpt.load_module_weights(self.nets[name], part, str(folder))
            else:
                own = self.nets[name].state_dict()
                fit = {k: v for k, v in part.items() if k in own and own[k].shape == v.shape}
                self.nets[name].load_state_dict(fit, strict=False)
            loaded.append(name)
        if not loaded:
            raise CheckpointError(f"{folder}: no network of {self.cfg.method} ({', '.join(wanted)}) found there")
        for name, ema in self.ema.items():      # the EMA starts from the warm-started weights
            ema.module.load_state_dict(self.nets[name].state_dict())
        if self.is_main:
            print(f"initialised {', '.join(loaded)} from {folder}", flush=True)

    # ---------------------------------------------------------------- the loop
    def _step_fn(self, name: str) -> None:
        opt = self.prepared_opts[name]
        clip = self.cfg.train.grad_clip
        if clip > 0:
            params = [p for g in self.optimizers[name].param_groups for p in g["params"] if p.grad is not None]
            self.acc.clip_grad_norm_(params, clip)
        # without a loss scaler Accelerate's wrapper only forwards the call
        (opt if self.acc.scaler is not None else self.optimizers[name]).step()
        if self.cfg.train.zero_grad == "eager":
            opt.zero_grad(set_to_none=True)
        else:
            self._stale_grads.add(name)

    def _backward_fn(self, loss: torch.Tensor) -> None:
        """ctx.backward: first free the gradients of the optimizers stepped since the last backward
        (with train.zero_grad=lazy; nothing can have read or added to them in between), then the
        backward pass. Same numbers as zeroing right after each step."""
        self._free_grads()
        if self.acc.scaler is None and self.acc.gradient_accumulation_steps == 1:
            loss.backward()     # what Accelerate does then, less a division of the loss by 1
        else:
            self.acc.backward(loss)

    def _free_grads(self) -> None:
        for name in self._stale_grads:
            self.prepared_opts[name].zero_grad(set_to_none=True)
        self._stale_grads.clear()

    def _check_finite(self, logs: dict) -> None:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if self.acc.num_processes > 1:
            flag = self.acc.reduce(torch.tensor([1.0 if bad else 0.0], device=self.device), reduction="sum")
            bad = bad or ([None] if flag.item() > 0 else [])
        if bad:
            where = f"; last good checkpoint: {self.last_checkpoint}" if self.last_checkpoint else \
                "; no checkpoint was written yet"
            what = f"loss '{bad[0]}' is {logs[bad[0]]}" if bad[0] is not None else \
                "a loss on another process is not finite"
            raise TrainingDiverged(f"{what} at step {self.step + 1}{where}")

    def _loader(self) -> DataLoader:
        tc = self.cfg.train
        self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * tc.batch_size)
        # A DataLoader draws its workers' base seed from its generator when iterated; a private one
        # keeps the global RNG (dropout, noise) untouched, so a resumed run stays bit-identical.
        loader_rng = torch.Generator().manual_seed(tc.seed * 7_919 + self.epoch)
        return DataLoader(self.dataset, batch_size=tc.batch_size, sampler=self.sampler, drop_last=True,
                          num_workers=tc.num_workers, persistent_workers=False,
                          pin_memory=self.device.type == "cuda", generator=loader_rng)

    @contextlib.contextmanager
    def _buffers_kept(self):
        """Logging must not change training: a method's ``visuals`` run in train mode would move
        BatchNorm statistics (and a run that logs at other steps would end elsewhere)."""
        saved = [(b, b.clone()) for net in self.nets.values() for b in net.buffers()]
        try:
            yield
        finally:
            with torch.no_grad():
                for b, v in saved:
                    b.copy_(v)

    def _visual_batch(self):
        if not hasattr(self, "_fixed_batch"):
            items = [self.dataset[(i, i)] for i in range(min(4, len(self.dataset)))]
            self._fixed_batch = move_to(torch.utils.data.default_collate(items), self.device)
        return self._fixed_batch

    def _evaluate(self) -> dict:
        """Held-out evaluation: metric objects (FID, SSIM, ...) over the eval batches, computed
        after their DDP reduction, and the per-batch scalars of ``evaluate`` weighted by batch size."""
        loader = DataLoader(self.eval_dataset, batch_size=self.cfg.train.batch_size, shuffle=False)
        metrics = {k: m.to(self.device) for k, m in self.method.eval_metrics().items()}
        totals: dict[str, float] = {}
        count = 0
        self.method.eval()
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if i >= self.cfg.train.eval_batches:
                    break
                batch = move_to(batch, self.device)
                n = len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch[0])
                for k, v in self.method.evaluate(batch).items():
                    totals[k] = totals.get(k, 0.0) + float(v) * n
                if metrics:
                    self.method.eval_update(batch, metrics)
                count += n
        self.method.train()
        out = {f"eval/{k}": v / max(count, 1) for k, v in totals.items()}
        for name, metric in metrics.items():
            for k, v in metric.compute().items():
                out[f"eval/{name}/{k}" if k != name else f"eval/{k}"] = float(v)
        return out

    def train_step(self, batch) -> dict[str, float]:
        """One optimisation step on one batch (already on the device): the method's step, the
        finiteness check, LR schedules, EMA. Returns the logged scalars."""
        batch = move_to(batch, self.device)
        ctx = StepContext(self.wrapped, self._backward_fn, self._step_fn, self.autocast,
                          self.device, self.step, self.epoch)
        out = self.method.training_step(batch, ctx)
        # one host sync for all scalars (a GPU would otherwise wait once per loss)
        values = list(out.values())
        tensors = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
        if tensors:
            read = torch.stack([values[i].detach().float().reshape(()).to(self.device) for i in tensors]).tolist()
            for i, v in zip(tensors, read):
                values[i] = v
        logs = {k: float(v) for k, v in zip(out, values)}
        self._check_finite(logs)
        with warnings.catch_warnings():
            # a method may skip an optimizer on some steps (DDPG while its replay buffer
            # fills); the schedule still follows the global step, so the warning is noise
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for s in self.schedulers.values():
                s.step()
        for name, ema in self.ema.items():
            ema.update_parameters(self.nets[name])
        self.step += 1
        self.batch_in_epoch += 1
        return logs

    def fit(self) -> TrainResult:
        from tqdm.auto import tqdm

        tc = self.cfg.train
        if self.is_main:
            import yaml
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        bar = tqdm(total=tc.steps, initial=self.step, disable=not (tc.progress and self.is_main),
                   desc=f"{self.cfg.method}", unit="step", dynamic_ncols=True)
        logs: dict = {}
        if self.step == 0 and tc.init_from:
            self.init_from()
        self.method.train()
        t_last, step_last = time.perf_counter(), self.step
        while self.step < tc.steps:
            for batch in self._loader():
                logs = self.train_step(batch)
                bar.update(1)
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    now = time.perf_counter()
                    rate = (self.step - step_last) / max(now - t_last, 1e-9)
                    t_last, step_last = now, self.step
                    lrs = {f"lr/{n}": o.param_groups[0]["lr"] for n, o in self.optimizers.items()}
                    self.logger.scalars(self.step, {**logs, **lrs, "steps_per_s": rate}, epoch=self.epoch)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
                if tc.image_every and (self.step % tc.image_every == 0 or self.step == tc.steps) and self.is_main:
                    with torch.random.fork_rng(devices=[]), self._buffers_kept():  # nor the RNG, nor BN
                        self.logger.images(self.step, self.method.visuals(self._visual_batch()))
                if tc.eval_every and self.step % tc.eval_every == 0:
                    with torch.random.fork_rng(devices=[]):
                        self.logger.scalars(self.step, self._evaluate())
                if self.step % tc.checkpoint_every == 0 or self.step == tc.steps:
                    self.save()
                if self.step >= tc.steps:
                    break
            else:  # the epoch ran out
                self.epoch += 1
                self.batch_in_epoch = 0
                continue
            if self.batch_in_epoch >= self.steps_per_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
        self._free_grads()
        bar.close()
        self.logger.close()
        return TrainResult(self.run_dir, self.step, self.last_checkpoint, logs)


def train(cfg: ExperimentConfig, resume: bool = False, allow_config_change: bool = False,
          overwrite: bool = False) -> TrainResult:
    with claim_run_dir(cfg, resume=resume, overwrite=overwrite):  # checks, lock, another run's files
        trainer = Trainer(cfg)
        if resume:
            with ckpt.state_errors(trainer.run_dir):
                resumed = trainer.resume(allow_config_change)
            if trainer.is_main:
                print(f"resuming from {trainer.last_checkpoint} (step {trainer.step})" if resumed else
                      f"no checkpoint in {trainer.run_dir}; starting from step 0", flush=True)
        return trainer.fit()


__all__ = ["Trainer", "TrainResult", "lr_factor", "train"]
