"""pix2pixHD: instance inputs, pooling, the loss balance, stages and warm starts, clustering, styles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsynth import testing
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.errors import UserError
from condsynth.io.state import load_tensors
from condsynth.models.pix2pixhd import LocalEnhancer, instance_average, instance_edges
from condsynth.pipelines import load_pipeline


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hd")


def test_boundary_map_on_a_hand_made_instance_map():
    inst = torch.tensor([[[1, 1, 2],
                          [1, 1, 2],
                          [3, 3, 3]]])
    want = torch.tensor([[[0, 1, 1],
                          [1, 1, 1],
                          [1, 1, 1]]], dtype=torch.float)
    assert torch.equal(instance_edges(inst)[:, 0], want)
    assert instance_edges(torch.full((1, 4, 5), 7)).sum() == 0


def test_instance_pooling_equals_a_loop_reference():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 6, 8, generator=g, requires_grad=True)
    inst = torch.randint(0, 4, (2, 6, 8), generator=g) * 1000 + 5       # same ids in both samples
    pooled, _ = instance_average(feat, inst)
    ref = feat.detach().clone()
    for b in range(2):
        for i in inst[b].unique():
            m = inst[b] == i
            for c in range(3):
                ref[b, c][m] = feat[b, c][m].mean()
    torch.testing.assert_close(pooled, ref)
    pooled.sum().backward()                 # differentiable: each pixel's gradient is 1 (mean of its instance)
    torch.testing.assert_close(feat.grad, torch.ones_like(feat))


def test_gan_terms_are_summed_over_scales(workdir):
    method = testing.build_method(testing.tiny_config("pix2pixhd", workdir))
    preds = [torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 2, 2), 0.0)]
    # LSGAN to "real": (0.5 - 1)^2 + (0 - 1)^2, summed (the reference), not averaged
    assert float(method.gan_loss(preds, True, for_discriminator=False)) == pytest.approx(1.25)


def _local_cfg(workdir, init_from=None, stage="local", **train_kw):
    raw = testing.tiny_config("pix2pixhd", workdir, **train_kw)
    raw["model"]["stage"] = stage
    raw["data"]["root"] = str(testing.label_scenes(workdir, size=(32, 64)))
    raw["data"]["load_size"] = raw["data"]["crop_size"] = [32, 64]
    if init_from:
        raw["train"]["init_from"] = str(init_from)
    return raw


def test_local_stage_freezes_g1(workdir):
    method = testing.build_method(_local_cfg(workdir))
    assert isinstance(method.G, LocalEnhancer)
    opt = method.configure_optimizers(None)
    in_opt = {id(p) for grp in opt["G"].param_groups for p in grp["params"]}
    g1 = list(method.G.global_net.parameters())
    assert not any(id(p) in in_opt for p in g1) and not any(p.requires_grad for p in g1)
    assert all(id(p) in in_opt for p in method.G.front.parameters())
    before = {k: v.clone() for k, v in method.G.state_dict().items()}
    method.training_step(testing.first_batch(method), testing.fake_context(method, opt))
    after = method.G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("global_net."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("front."))


def test_init_from_global_into_local_then_joint(workdir, tmp_path):
    glob = train(build_experiment_config(testing.tiny_config("pix2pixhd", workdir, tmp_path / "global", steps=1)))
    local = train(build_experiment_config(_local_cfg(workdir, glob.run_dir, out_dir=tmp_path / "local", steps=1)))
    g, loc = load_tensors(glob.last_checkpoint / "model.safetensors"), \
        load_tensors(local.last_checkpoint / "model.safetensors")
    g1 = [k for k in g if k.startswith("G.")]
    assert g1 and all(torch.equal(g[k], loc["G.global_net." + k[2:]]) for k in g1)   # G1 copied, then frozen
    assert any(not torch.equal(g[k], loc[k]) for k in g if k.startswith("E."))         # E trained on
    joint = train(build_experiment_config(_local_cfg(workdir, local.run_dir, stage="joint",
                                                     out_dir=tmp_path / "joint", steps=1)))
    j = load_tensors(joint.last_checkpoint / "model.safetensors")
    stem = [k for k in loc if k.startswith("G.global_net.stem")]
    assert stem and any(not torch.equal(loc[k], j[k]) for k in stem)                   # joint trains G1 too


def test_clustering_and_styles(workdir, tmp_path):
    run = train(build_experiment_config(testing.tiny_config("pix2pixhd", workdir, tmp_path / "run", steps=1)))
    pipe = load_pipeline(run.run_dir, device="cpu")
    with pytest.raises(UserError, match="never computed"):
        pipe(np.zeros((16, 32), np.int64), instances=np.zeros((16, 32), np.int64))
    counts = pipe.cluster_features()
    cl = pipe.method.clusters
    assert counts and all(1 <= k <= 3 for k in counts.values())
    # the instances that enter K-means, counted from the maps alone: class = id or id // 1000, area > 1/64
    from condsynth.io.images import list_images, read_image, read_instance_map, read_label_map
    root = testing.label_scenes(workdir)
    want = np.zeros(11, int)
    for f in list_images(root / "train/instance"):
        ids, area = np.unique(read_instance_map(f), return_counts=True)
        for i in ids[area > 16 * 32 / 64]:
            want[i if i < 1000 else i // 1000] += 1
    assert cl.instances.tolist() == want.tolist() and want[5] > 1     # several buildings
    assert cl.counts.tolist() == np.minimum(want, 3).tolist()         # K = min(n_clusters, count)
    with pytest.raises(UserError, match=r"building=7: class 'building' has clusters 0\.\.\d \(\d in all\)"):
        pipe.method.check_style({"building": 7})

    labels, inst = read_label_map(root / "train/A/00000.png"), read_instance_map(root / "train/instance/00000.png")
    photo = read_image(root / "train/B/00000.png")
    fixed = {cls: 0 for cls in range(11) if int(cl.counts[cls]) > 0}     # every class chosen: no randomness
    by_style = [pipe(labels, instances=inst, style={**fixed, "building": k}, seed=0).image
                for k in range(int(cl.counts[5]))]
    assert np.array_equal(pipe(labels, instances=inst, style=fixed, seed=9).image, by_style[0])
    if len(by_style) > 1:
        assert not np.array_equal(by_style[0], by_style[1])           # another cluster, another facade
    from_photo = pipe(labels, instances=inst, style_from=photo).image
    assert from_photo.shape == (16, 32, 3) and not np.array_equal(from_photo, by_style[0])

    # the export carries the clusters
    out = pipe.save_pretrained(tmp_path / "export")
    again = load_pipeline(out, device="cpu")
    assert torch.equal(again.method.clusters.centres, cl.centres)
    assert np.array_equal(again(labels, instances=inst, style_from=photo).image, from_photo)


def test_label_out_of_range_is_one_clear_line(workdir):
    method = testing.build_method(testing.tiny_config("pix2pixhd", workdir))
    batch = testing.first_batch(method)
    batch["A"][1, 0, 0] = 11
    with pytest.raises(UserError, match=r"label id 11 in '00001' is outside 0\.\.10 \(model\.label_nc=11\)"):
        method.training_step(batch, testing.fake_context(method))


def test_translate_cli_with_instances_styles_and_a_pix2pix_refusal(workdir, tmp_path, capsys):
    from condsynth.cli.main import main

    run = train(build_experiment_config(testing.tiny_config("pix2pixhd", workdir, tmp_path / "hd", steps=1)))
    assert main(["export", str(run.run_dir), "--out", str(tmp_path / "exp"), "--cluster-features"]) == 0
    assert "building" in capsys.readouterr().out
    root = testing.label_scenes(workdir)
    base = ["translate", "--checkpoint", str(tmp_path / "exp"), str(root / "val/A"),
            "--instances", str(root / "val/instance")]
    assert main(base + ["--style", "building=0", "--out", str(tmp_path / "o1")]) == 0
    assert main(base + ["--style-from", str(root / "val/B"), "--out", str(tmp_path / "o2")]) == 0
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == sorted(p.name for p in (root / "val/A").iterdir())
    capsys.readouterr()
    assert main(base + ["--style", "building=99", "--out", str(tmp_path / "o3")]) == 2
    assert "class 'building' has clusters 0.." in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()

    p2p = train(build_experiment_config(testing.tiny_config("pix2pix", workdir, tmp_path / "p2p", steps=1)))
    assert main(["translate", "--checkpoint", str(p2p.run_dir), str(root / "val/B"), "--instances",
                 str(root / "val/instance"), "--out", str(tmp_path / "o4")]) == 2
    assert "--instances is for label-map models (pix2pixhd)" in capsys.readouterr().err


def test_tiled_translation_equals_the_whole_image(workdir):
    """The local-stage generator (LocalEnhancer around G1), features encoded from the photo: tiles of 16
    pixels give the whole image's output (instance norm statistics over the whole map, nn/tiled.py)."""
    method = testing.build_method(_local_cfg(workdir))
    method.prepare_for_inference()
    batch = testing.first_batch(method, "eval", n=1)
    whole = method.translate(batch["A"], batch["inst"], style=batch["B"])
    tiled = method.translate(batch["A"], batch["inst"], style=batch["B"], tile=16)
    assert whole.shape == tiled.shape == (1, 3, 32, 64)
    assert float((whole - tiled).abs().max()) < 1e-4


def test_optional_l1_term_is_lambda_times_the_mean_error(workdir):
    """model.lambda_l1 (not in the paper; off by default) adds λ·mean|G(s) - x| to G's loss."""
    raw = testing.tiny_config("pix2pixhd", workdir)
    raw["model"]["lambda_l1"] = 10.0
    method = testing.build_method(raw)
    batch = testing.first_batch(method)
    with torch.no_grad():
        x = method.encode_input(batch["A"], batch["inst"])
        x = torch.cat([x, method.E(batch["B"], method.pooling_ids(batch["A"], batch["inst"]))], 1)
        expect = 10.0 * torch.nn.functional.l1_loss(method.G(x), batch["B"])
    logs = method.training_step(batch, testing.fake_context(method))
    assert float(logs["loss_G_L1"]) == pytest.approx(float(expect), rel=1e-5)
    plain = testing.build_method(testing.tiny_config("pix2pixhd", workdir))
    assert float(plain.training_step(testing.first_batch(plain), testing.fake_context(plain))["loss_G_L1"]) == 0.0


def test_encoder_norm_follows_g_by_default_and_can_be_batch(workdir, tmp_path):
    """model.encoder_norm: "" keeps the reference's one norm for G and E; "batch" (a documented deviation:
    instance norm removes a photo's mean colour) puts BatchNorm in E only, and its running statistics
    travel through save, export and the pipeline."""
    default = testing.build_method(testing.tiny_config("pix2pixhd", workdir))
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in default.E.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in default.E.modules())
    raw = testing.tiny_config("pix2pixhd", workdir)
    raw["model"]["encoder_norm"] = "batch"
    method = testing.build_method(raw)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in method.E.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in method.G.modules())
    raw["train"]["out_dir"] = str(tmp_path / "run")
    train(build_experiment_config(raw))
    pipe = load_pipeline(str(tmp_path / "run"), device="cpu")
    stats = [m.running_mean for m in pipe.method.E.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert stats and any(float(s.abs().sum()) > 0 for s in stats)   # trained statistics, not the zero init
