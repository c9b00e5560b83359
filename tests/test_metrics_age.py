"""Age accuracy (Table 4.2 protocol), the UTKFace filename reader and split, and the age regressor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ttest_ind

from condsynth.data.utkface import (AGE_GROUP_NAMES, UTKFaceDataset, age_group, parse_utkface_name, read_utkface,
                                    split_utkface, write_split_lists)
from condsynth.errors import UserError
from condsynth.metrics.age import (AgeAccuracy, AgeRegressor, age_rows, format_age_table, load_age_regressor,
                                   save_age_regressor, train_age_regressor)


def test_parse_names_and_groups():
    r = parse_utkface_name("data/25_1_2_20170116174525125.jpg.chip.jpg")
    assert (r.age, r.gender, r.race, r.date, r.group) == (25, 1, 2, "20170116174525125", 3)
    assert parse_utkface_name("1_0_0_20161219140623097.jpg").group == 0
    for bad, msg in (("39_1_20170116174525125.jpg.chip.jpg", "not a UTKFace file name"),
                     ("120_0_0_20170116174525125.jpg", "age 120 out of range"),
                     ("30_2_0_20170116174525125.jpg", "gender 2"),
                     ("30_0_7_20170116174525125.jpg", "race 7")):
        with pytest.raises(UserError, match=msg):
            parse_utkface_name(bad)
    assert [age_group(a) for a in (0, 5, 6, 10, 11, 20, 21, 30, 80, 81, 116)] == [0, 0, 1, 1, 2, 2, 3, 3, 8, 9, 9]
    assert AGE_GROUP_NAMES[9] == "80+"


@pytest.fixture()
def utk_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "UTKFace"
    root.mkdir()
    ages = list(range(1, 100, 2))  # 50 faces over all groups
    for i, age in enumerate(ages):
        # brightness encodes age, so a tiny network can learn it
        img = np.full((40, 40, 3), int(40 + 2 * age), np.uint8) + rng.integers(0, 8, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"{age}_{i % 2}_{i % 5}_2017011617452{i:04d}.jpg.chip.jpg")
    (root / "39_1_20170116174525125.jpg.chip.jpg").write_bytes((root.iterdir().__next__()).read_bytes())
    return root


def test_reader_split_and_dataset(utk_root, tmp_path):
    with pytest.raises(UserError, match="39_1_20170116174525125"):
        read_utkface(utk_root)
    records, skipped = read_utkface(utk_root, skip_invalid=True)
    assert len(records) == 50 and [p.name for p in skipped] == ["39_1_20170116174525125.jpg.chip.jpg"]
    train, test = split_utkface(records, test_fraction=0.2, seed=0)
    assert len(train) + len(test) == 50 and not {r.path for r in train} & {r.path for r in test}
    assert split_utkface(records, test_fraction=0.2, seed=0) == (train, test)  # deterministic
    groups_test = {r.group for r in test}
    assert len(groups_test) >= 8  # stratified: nearly every group contributes
    write_split_lists(train, test, tmp_path / "splits")
    ds = UTKFaceDataset(utk_root, split_file=tmp_path / "splits" / "test.txt", size=32)
    assert len(ds) == len(test)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].min() >= -1 and item["image"].max() <= 1
    assert item["age"] == float(test[0].age) and item["group"] == test[0].group
    (tmp_path / "bad.txt").write_text("nope_0_0_1.jpg\n")
    with pytest.raises(UserError, match="nope_0_0_1.jpg"):
        UTKFaceDataset(utk_root, split_file=tmp_path / "bad.txt")


def test_age_accuracy_table_and_welch_test():
    rng = np.random.default_rng(0)
    real = {3: rng.normal(25, 3, 40), 4: rng.normal(38, 4, 30)}
    fake = {3: rng.normal(26, 3, 50), 4: rng.normal(36, 4, 20)}
    m = AgeAccuracy()
    for g in (3, 4):
        m.update(real[g][:10], [g], real=True)
        m.update(real[g][10:], np.full(len(real[g]) - 10, g), real=True)
        m.update(torch.from_numpy(fake[g]), [g], real=False)
    out = m.compute()
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    assert {"mean_fake_g3", "welch_p_g4", "mean_abs_diff"} <= set(out) and "mean_fake_g5" not in out
    rows = age_rows(out)
    assert [r["group"] for r in rows] == ["21-30", "31-40"]
    for r, g in zip(rows, (3, 4)):
        assert r["mean_real"] == pytest.approx(real[g].mean()) and r["mean_fake"] == pytest.approx(fake[g].mean())
        assert r["abs_diff"] == pytest.approx(abs(fake[g].mean() - real[g].mean()))
        assert r["welch_p"] == pytest.approx(ttest_ind(fake[g], real[g], equal_var=False).pvalue, rel=1e-6)
    table = format_age_table(rows, "LDcGAN")
    assert "| Real | " in table and f"({rows[0]['abs_diff']:.2f})" in table


def test_age_regressor_learns_and_roundtrips(utk_root, tmp_path):
    torch.manual_seed(0)
    ds = UTKFaceDataset(utk_root, size=32)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True,
                                         collate_fn=lambda b: {"image": torch.stack([x["image"] for x in b]),
                                                               "age": torch.stack([x["age"] for x in b])})
    model = AgeRegressor(width=8)
    losses = train_age_regressor(model, loader, epochs=25, lr=3e-3)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    path = save_age_regressor(model, tmp_path / "age.safetensors", meta={"data": "synthetic"})
    loaded, meta = load_age_regressor(path)
    x = torch.stack([ds[i]["image"] for i in range(4)])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    assert meta == {"data": "synthetic"}
    m = AgeAccuracy(estimator=loaded)
    m.update(images=x, groups=[ds[i]["group"] for i in range(4)], real=True)
    assert int(m.real_n.sum()) == 4
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(UserError, match="junk.safetensors"):
        load_age_regressor(tmp_path / "junk.safetensors")


def test_eval_age_train_and_age_accuracy_cli(utk_root, tmp_path, capsys):
    import json
    import shutil

    from condsynth.cli.main import main

    est = tmp_path / "age.safetensors"
    assert main(["eval", "age-train", str(utk_root), "--estimator", str(est), "--epochs", "2", "--size", "32",
                 "--batch-size", "16", "--out", str(tmp_path / "train.json")]) == 0
    rec = json.loads((tmp_path / "train.json").read_text())
    assert rec["num_samples"]["train"] + rec["num_samples"]["test"] == 50 and rec["values"]["test_mae_years"] >= 0
    assert "39_1_20170116174525125.jpg.chip.jpg" in " ".join(rec["extra"]["skipped_files"])
    gen = tmp_path / "gen"
    for f in sorted(utk_root.glob("*_*_*_*.jpg.chip.jpg")):
        try:
            g = __import__("condsynth.data.utkface", fromlist=["x"]).parse_utkface_name(f).group
        except UserError:
            continue
        (gen / AGE_GROUP_NAMES[g]).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, gen / AGE_GROUP_NAMES[g] / f.name)
    out = tmp_path / "age.json"
    assert main(["eval", "age", str(utk_root), str(gen), "--estimator", str(est), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["values"]["rows"]
    assert len(rows) == 10 and all(r["abs_diff"] < 1e-6 for r in rows)  # the same faces on both sides
    assert "| Real |" in capsys.readouterr().out
    (tmp_path / "flat").mkdir()             # no group sub-folders (and the output outside every input)
    assert main(["eval", "age", str(utk_root), str(tmp_path / "flat"), "--estimator", str(est),
                 "--out", str(tmp_path / "flat.json")]) == 2
    assert "sub-folders named after the target age groups" in capsys.readouterr().err
