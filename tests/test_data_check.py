"""`condsynth data check DATASET DIR`: every registered checker on tiny datasets written here."""

import numpy as np
import pytest
from PIL import Image

from condsynth.data.check import all_checks, check_dataset
from condsynth.errors import UserError
from condsynth.io.images import save_label_map


def write(path, arr=None, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(size + (3,), np.uint8) if arr is None else arr).save(path)
    return path


def main(*argv):
    from condsynth.cli.main import main as cli_main
    return cli_main(["data", "check", *argv])


def test_registry_holds_every_reader():
    assert {"pix2pix", "unpaired", "utkface", "labels", "scenes"} <= set(all_checks())
    with pytest.raises(UserError, match="unknown dataset kind 'nope' \\(known: .*pix2pix.*utkface"):
        check_dataset("nope", ".")


def test_pix2pix_counts_layouts_and_unpaired_names(tmp_path, capsys):
    for i in range(3):
        write(tmp_path / f"p/train/{i}.png", size=(8, 16))          # AB
    write(tmp_path / "p/val/A/x.png")
    write(tmp_path / "p/val/B/x.png")
    write(tmp_path / "p/val/B/stray.png")
    report = check_dataset("pix2pix", tmp_path / "p")
    assert report.counts == {"train": 3, "val": 1}
    assert report.lines[0] == "train: 3 pairs (ab layout), 8x8 (h x w)"
    assert "no partner in A/ (first: stray.png)" in report.warnings[0]
    assert main("pix2pix", str(tmp_path / "p")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"pix2pix dataset at {tmp_path / 'p'}: usable") and "val: 1 pair (folders" in out


@pytest.mark.parametrize("damage, message", [
    ("missing_b", "no image matching 'y.png' from A/"),
    ("truncated", "y.png: corrupt or truncated"),
    ("odd", "width 9 is odd"),
    ("no_train", "train: split folder not found"),
])
def test_pix2pix_unusable_is_one_error_line(tmp_path, capsys, damage, message):
    root = tmp_path / "p"
    if damage == "odd":
        write(root / "train/y.png", size=(8, 9))
    elif damage == "no_train":
        write(root / "test/y.png", size=(8, 16))
    else:
        write(root / "train/A/x.png")
        write(root / "train/B/x.png")
        good = write(root / "train/A/y.png", np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
        if damage == "truncated":
            write(root / "train/B/y.png", size=(32, 32))
            good.write_bytes(good.read_bytes()[:60])
    assert main("pix2pix", str(root)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("condsynth: error: ") and message in err[0]


def test_unpaired(tmp_path):
    for i in range(2):
        write(tmp_path / f"u/trainA/{i}.png")
    for i in range(3):
        write(tmp_path / f"u/trainB/{i}.jpg", size=(6, 10))
    report = check_dataset("unpaired", tmp_path / "u")
    assert report.counts == {"trainA": 2, "trainB": 3}
    assert "trainB: 3 images, 6x10 (h x w)" in report.lines
    (tmp_path / "u/testA").mkdir()
    with pytest.raises(UserError, match="testA: no image files"):
        check_dataset("unpaired", tmp_path / "u")
    with pytest.raises(UserError, match="trainA: folder not found"):
        check_dataset("unpaired", tmp_path)


def test_utkface(tmp_path):
    names = ["1_0_0_20170109150557335.jpg", "25_1_2_20170116174525125.jpg.chip.jpg",
             "25_0_3_20170119171345678.jpg", "90_1_4_20170120134639935.jpg"]
    for n in names:
        write(tmp_path / "utk" / n)
    write(tmp_path / "utk/39_1_20170116174525125.jpg")            # a released file without its race field
    report = check_dataset("utkface", tmp_path / "utk")
    assert report.counts["images"] == 4 and report.counts["skipped"] == 1
    assert report.counts["age_groups"]["0-5"] == 1 and report.counts["age_groups"]["21-30"] == 2
    assert "gender: male 2, female 2" in report.lines
    assert "first: " in report.warnings[0] and "39_1_20170116174525125.jpg" in report.warnings[0]
    assert "no images in age groups 6-10" in report.warnings[1]
    (tmp_path / "bad").mkdir()
    write(tmp_path / "bad/not_a_face.jpg")
    with pytest.raises(UserError, match="no files in the UTKFace layout"):
        check_dataset("utkface", tmp_path / "bad")


def test_labels_range_counts_and_instances(tmp_path):
    ids = np.zeros((4, 6), np.uint8)
    ids[:, 3:] = 2
    save_label_map(tmp_path / "d/A/0.png", ids)
    save_label_map(tmp_path / "d/A/1.png", np.full((4, 6), 2, np.uint8))
    report = check_dataset("labels", tmp_path / "d/A")
    assert report.counts["range"] == [0, 2] and report.counts["pixels"] == {0: 12, 2: 36}
    assert "label range 0..2, 2 distinct ids" in report.lines
    assert "  id 2: 75.0% of pixels, in 2 of 2 maps" in report.lines
    assert "no instance maps" in report.lines[-1]
    inst = np.where(ids == 2, 26001, 7).astype(np.int32)
    save_label_map(tmp_path / "d/instance/0.png", inst, bits=16)
    with pytest.raises(UserError, match="no instance map for '1.png'"):
        check_dataset("labels", tmp_path / "d/A")
    save_label_map(tmp_path / "d/instance/1.png", np.full((4, 6), 26000, np.int32))
    report = check_dataset("labels", tmp_path / "d/A")                 # instance/ beside A/
    assert report.counts["instance_maps"] == 2 and report.counts["things"] == 2
    save_label_map(tmp_path / "d/instance/1.png", np.zeros((5, 6), np.int32))
    with pytest.raises(UserError, match="1.png: size 6x5 differs from its label map"):
        check_dataset("labels", tmp_path / "d/A")
    write(tmp_path / "rgb/x.png")
    with pytest.raises(UserError, match="x.png: a colour image"):
        check_dataset("labels", tmp_path / "rgb")


def test_scenes(tmp_path):
    from condsynth.data.synth.scenes import write_dataset
    write_dataset(tmp_path / "s", 6, size=16, layout="folders", class_ids=True, instances=True, progress=False)
    report = check_dataset("scenes", tmp_path / "s")
    assert report.counts["train"] == 4 and report.counts["val"] == 1
    assert any(ln.startswith("  id 0 sky:") for ln in report.lines)
    assert "with instance maps" in report.lines[0]
    write_dataset(tmp_path / "ab", 3, size=16, progress=False)
    assert check_dataset("scenes", tmp_path / "ab").counts["train"] == 3
    # a label map saved lossily once (same name, still a PNG)
    ab = tmp_path / "ab/train/00000.png"
    Image.open(ab).convert("RGB").save(tmp_path / "lossy.jpg", quality=40)
    Image.open(tmp_path / "lossy.jpg").save(ab)
    with pytest.raises(UserError, match="00000.png: label colours outside the palette"):
        check_dataset("scenes", tmp_path / "ab")
    # a file lost since it was written
    (tmp_path / "ab/train/00001.png").unlink()
    with pytest.raises(UserError, match="2 pairs, but meta.json counts 3"):
        check_dataset("scenes", tmp_path / "ab")
    # class-id maps replaced by colour images
    a = tmp_path / "s/train/A/00000.png"
    Image.open(a).convert("RGB").save(a)
    with pytest.raises(UserError, match="00000.png: a colour image"):
        check_dataset("scenes", tmp_path / "s")
    with pytest.raises(UserError, match="meta.json: not found"):
        check_dataset("scenes", tmp_path / "s/train")
