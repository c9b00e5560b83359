"""Engine hooks the coming methods need: method state, frozen parts, warm starts, schedules, metrics."""

from __future__ import annotations

import json

import pytest
import torch

from condsynth import testing
from condsynth.engine.config import ScheduleConfig, build_experiment_config
from condsynth.engine.trainer import Trainer, lr_factor, train
from condsynth.errors import CheckpointError, ConfigError, UserError
from condsynth.models import REGISTRY, register
from condsynth.models.base import FrozenRef
from condsynth.models.template import TemplateMethod


class CountingTemplate(TemplateMethod):
    """The template plus method state (a counter and a pool of images) and a frozen part."""

    name = "counting_template"

    def __init__(self, model_cfg, data_cfg):
        super().__init__(model_cfg, data_cfg)
        self.seen = 0
        self.pool: list[torch.Tensor] = []

    def frozen_networks(self):
        return {"teacher": FrozenRef(FROZEN["path"], "template")} if FROZEN.get("path") else {}

    def training_step(self, batch, ctx):
        self.seen += batch["A"].shape[0]
        self.pool = (self.pool + [batch["A"][0]])[-3:]
        return super().training_step(batch, ctx)

    def extra_state(self):
        return {"seen": self.seen, "pool": list(self.pool)}

    def load_extra_state(self, state):
        self.seen, self.pool = state["seen"], list(state["pool"])

    def eval_metrics(self):
        from torchmetrics import MeanMetric

        class MeanL1(MeanMetric):
            def compute(self):
                return {"l1": super().compute()}
        return {"l1": MeanL1()}

    def eval_update(self, batch, metrics):
        metrics["l1"].update((self.G(batch["A"]) - batch["B"]).abs().mean((1, 2, 3)))


FROZEN: dict = {}


@pytest.fixture(autouse=True)
def counting_method():
    register("counting_template", f"{__name__}:CountingTemplate")
    yield
    REGISTRY.pop("counting_template", None)
    FROZEN.clear()


def tiny(workdir, out, **train_kw):
    raw = testing.tiny_config("template", workdir, out, **train_kw)
    raw["method"] = "counting_template"
    return raw


def test_piecewise_schedule():
    f = lr_factor(ScheduleConfig(kind="piecewise", milestones=[3, 6], values=[1.0, 0.5, 0.2]))
    assert [f(s) for s in (0, 2, 3, 5, 6, 100)] == [1.0, 1.0, 0.5, 0.5, 0.2, 0.2]
    with pytest.raises(ConfigError, match="one more value than milestones"):
        build_experiment_config({"method": "template", "train": {"schedule": {"kind": "piecewise",
                                                                              "milestones": [3], "values": [1]}}})


def test_method_state_is_saved_and_restored(tmp_path):
    train(build_experiment_config(tiny(tmp_path, tmp_path / "run", steps=2)))
    trainer = Trainer(build_experiment_config(tiny(tmp_path, tmp_path / "run", steps=4)))
    assert trainer.resume()
    assert trainer.method.seen == 2 * 2 and len(trainer.method.pool) == 2
    state = json.loads((trainer.last_checkpoint / "train_state.json").read_text())
    assert "method" in json.dumps(state)


def test_frozen_part_recorded_by_reference_and_change_refused(tmp_path):
    teacher = train(build_experiment_config(testing.tiny_config("template", tmp_path, tmp_path / "teacher", steps=1)))
    FROZEN["path"] = str(tmp_path / "teacher")
    result = train(build_experiment_config(tiny(tmp_path, tmp_path / "student", steps=2)))
    meta = json.loads((result.last_checkpoint / "config.json").read_text())
    rec = meta["frozen"]["teacher"]
    assert rec["method"] == "template" and len(rec["sha256"]) == 64
    from condsynth.io.state import load_tensors
    assert not any(k.startswith("teacher.") for k in load_tensors(result.last_checkpoint / "model.safetensors"))
    # the teacher is retrained: the student's run no longer resumes silently
    train(build_experiment_config(testing.tiny_config("template", tmp_path, tmp_path / "teacher", steps=2)),
          resume=True)
    assert teacher.last_checkpoint.parent.exists()
    with pytest.raises(ConfigError, match="frozen teacher"):
        train(build_experiment_config(tiny(tmp_path, tmp_path / "student", steps=3)), resume=True)


def test_init_from_copies_matching_networks(tmp_path):
    src = train(build_experiment_config(testing.tiny_config("template", tmp_path, tmp_path / "src", steps=2)))
    cfg = build_experiment_config(testing.tiny_config("template", tmp_path, tmp_path / "dst", steps=1,
                                                      init_from=str(tmp_path / "src")))
    trainer = Trainer(cfg)
    trainer.init_from()
    from condsynth.io.state import load_tensors
    want = load_tensors(src.last_checkpoint / "model.safetensors")
    for k, v in trainer.method.G.state_dict().items():
        assert torch.equal(v, want[f"G.{k}"])
    bad = build_experiment_config(testing.tiny_config("template", tmp_path, tmp_path / "dst2", steps=1,
                                                      init_from=str(tmp_path / "src"), init_networks=["D"]))
    with pytest.raises(ConfigError, match="init_networks: 'D'"):
        Trainer(bad).init_from()
    with pytest.raises(CheckpointError):
        Trainer(build_experiment_config(testing.tiny_config(
            "template", tmp_path, tmp_path / "dst3", steps=1, init_from=str(tmp_path / "nowhere")))).init_from()


def test_eval_metrics_reach_the_log(tmp_path):
    result = train(build_experiment_config(tiny(tmp_path, tmp_path / "ev", steps=2, eval_every=2, eval_batches=2)))
    rows = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/l1" in r]
    assert evals and 0 < evals[-1]["eval/l1"] < 2


def test_missing_eval_split_is_an_error_before_training(tmp_path):
    raw = tiny(tmp_path, tmp_path / "noeval", steps=2, eval_every=1)
    raw["data"]["eval_split"] = "nosuchsplit"
    with pytest.raises(UserError, match="nosuchsplit"):
        Trainer(build_experiment_config(raw))


def test_resume_of_a_checkpoint_older_than_a_new_key_at_its_default(tmp_path, capsys):
    raw = testing.tiny_config("template", tmp_path, tmp_path / "old", steps=2)
    first = train(build_experiment_config(raw))
    meta_file = first.last_checkpoint / "config.json"
    meta = json.loads(meta_file.read_text())
    del meta["config"]["data"]["instances"]          # as written before that key existed
    meta_file.write_text(json.dumps(meta))
    raw["train"]["steps"] = 3
    assert train(build_experiment_config(raw), resume=True).step == 3
    assert "config changes: train.steps: 2 -> 3" in capsys.readouterr().out
