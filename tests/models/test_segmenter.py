"""The segmenter method: logits (no tanh) at any stride-divisible size, mixed-size training data, bad ids."""

from __future__ import annotations

import pytest
import torch

from condsynth import testing
from condsynth.data.synth import scenes
from condsynth.errors import UserError


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    work = tmp_path_factory.mktemp("segm")
    square = testing.scenes_ids_dataset(work)
    wide = work / "wide"
    scenes.write_dataset(wide, 3, size=(16, 32), seed=9, val_fraction=0, test_fraction=0, layout="folders",
                         class_ids=True, progress=False)
    return work, square, wide


def test_extra_roots_add_2to1_photos_as_square_crops_and_the_net_is_fully_convolutional(roots):
    work, square, wide = roots
    raw = testing.tiny_config("segmenter", work)
    raw["data"]["extra_roots"] = [str(wide)]
    method = testing.build_method(raw)
    ds = method.build_dataset("train")
    n_square = len(list((square / "train" / "A").iterdir()))
    assert len(ds) == n_square + 3
    item = ds[(len(ds) - 1, 7)]                      # from the 2:1 root, as the sampler asks for it
    assert item["A"].shape == (3, 16, 16) and item["B"].shape == (16, 16) and item["B"].dtype == torch.int64
    assert item["A"].min() >= -1 and item["B"].max() < 11
    method.eval()
    for h, w in ((16, 16), (16, 32), (32, 64)):
        logits = method.segment(torch.zeros(1, 3, h, w))
        assert logits.shape == (1, 11, h, w)
    with torch.no_grad():
        method.net.up[-1][-1].weight.mul_(1000)          # large weights give large logits: no tanh at the end
    assert method.segment(torch.randn(1, 3, 16, 16)).abs().max() > 2


def test_a_label_id_beyond_num_classes_names_the_sample(roots):
    work, _, _ = roots
    method = testing.build_method(testing.tiny_config("segmenter", work))
    batch = testing.first_batch(method)
    batch["B"][0, 0, 0] = 40
    with pytest.raises(UserError, match=r"holds class id 40, but model.num_classes is 11"):
        method.training_step(batch, testing.fake_context(method))
