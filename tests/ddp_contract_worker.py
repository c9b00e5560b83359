"""Launched by torchrun from test_contract.py: trains a method's tiny config and writes this
rank's initial and final weights of every trained network."""

import sys

import torch

from condsynth import testing
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import Trainer
from condsynth.io.state import save_tensors

name, workdir, out = sys.argv[1:]
torch.set_num_threads(1)
trainer = Trainer(build_experiment_config(testing.tiny_config(name, workdir, f"{out}/run", steps=6)))


def weights(prefix):
    return {f"{prefix}{n}.{k}": v.clone() for n, net in trainer.nets.items() for k, v in net.state_dict().items()}


initial = weights("init.")
trainer.fit()
save_tensors(f"{out}/rank{trainer.acc.process_index}.safetensors", {**weights(""), **initial},
             metadata={"world": str(trainer.acc.num_processes)})
