from pathlib import Path

import pytest

from condsynth.config import apply_overrides, from_dict, load_yaml
from condsynth.engine.config import TrainConfig, build_experiment_config, load_experiment_config
from condsynth.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_overrides_are_typed_and_nested():
    raw = apply_overrides({"method": "pix2pix"}, ["train.steps=12", "model.lr=1e-4", "train.schedule.kind=linear",
                                                  "model.dropout_blocks=[1, 2, 3]"])
    cfg = build_experiment_config(raw)
    assert cfg.train.steps == 12 and cfg.model.lr == pytest.approx(1e-4)
    assert cfg.train.schedule.kind == "linear"
    assert cfg.model.dropout_blocks == (1, 2, 3)


@pytest.mark.parametrize("override, message", [
    ("train.stepz=3", "unknown config key 'train.stepz'"),
    ("model.ngf=abc", "'model.ngf' must be an integer"),
    ("train.precision=fp8", "'train.precision' must be one of"),
    ("train.progress=maybe", "'train.progress' must be true or false"),
    ("bogus=1", "unknown config key 'bogus'"),
])
def test_bad_keys_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        build_experiment_config(apply_overrides({"method": "pix2pix"}, [override]))


def test_unknown_method_and_validation():
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        build_experiment_config({"method": "nope"})
    with pytest.raises(ConfigError, match="batch_size"):
        from_dict(TrainConfig, {"batch_size": 0}, prefix="train.")


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_experiment_config(tmp_path / "missing.yaml")


def test_shipped_configs_load():
    for path in [ROOT / "configs/pix2pix/scenes64.yaml", ROOT / "configs/pix2pix/paper256.yaml"]:
        cfg = load_experiment_config(path)
        assert cfg.method == "pix2pix"
    paper = load_experiment_config(ROOT / "configs/pix2pix/paper256.yaml")
    assert paper.model.lambda_l1 == 100.0 and paper.model.lr == 2e-4 and paper.model.beta1 == 0.5
    assert paper.data.load_size == 286 and paper.data.crop_size == 256
