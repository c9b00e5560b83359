"""Launched by torchrun from test_ddp.py: trains a tiny pix2pix and writes this rank's weights."""

import sys

import torch

from condsynth.engine.config import load_experiment_config
from condsynth.engine.trainer import Trainer
from condsynth.io.state import save_tensors

config, out, *overrides = sys.argv[1:]
torch.set_num_threads(1)
trainer = Trainer(load_experiment_config(config, overrides))
initial = {k: v.clone() for k, v in trainer.method.G.state_dict().items()}
trainer.fit()
rank = trainer.acc.process_index
weights = {f"G.{k}": v for k, v in trainer.method.G.state_dict().items()}
weights.update({f"D.{k}": v for k, v in trainer.method.D.state_dict().items()})
weights.update({f"init.{k}": v for k, v in initial.items()})
save_tensors(f"{out}/rank{rank}.safetensors", weights, metadata={"world": str(trainer.acc.num_processes)})
