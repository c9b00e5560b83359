import numpy as np
import pytest
from PIL import Image

from condsynth.errors import UserError
from condsynth.io.images import list_images, read_image, save_image, tensor_to_uint8, uint8_to_tensor


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (20, 10, 3)  # displayed upright: portrait
    assert out[:10].mean() > 200 and out[10:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "1", "LA"])
def test_modes_become_rgb_uint8(tmp_path, mode):
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (8, 9, 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray((np.arange(72).reshape(8, 9) * 900).astype(np.uint16))
        suffix = ".png"
    else:
        img = base.convert(mode)
        suffix = ".jpg" if mode == "CMYK" else ".png"
    img.save(tmp_path / f"x{suffix}")
    out = read_image(tmp_path / f"x{suffix}")
    assert out.shape == (8, 9, 3) and out.dtype == np.uint8
    if mode == "I;16":  # 16-bit range is scaled, not clipped: the brightest pixel is near white
        assert out.max() > 240 and out.min() == 0


def test_transparent_pixels_composite_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 3] = 0
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    assert (read_image(tmp_path / "t.png") == 255).all()


@pytest.mark.parametrize("content, message", [
    (b"", "file is empty"), (b"this is not an image", "not a readable image"),
])
def test_bad_files_name_the_path(tmp_path, content, message):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(UserError, match=f"bad.png: {message}"):
        read_image(p)


def test_truncated_and_missing(tmp_path):
    good = tmp_path / "g.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.png: corrupt or truncated"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(UserError, match="nope.png: file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(UserError, match="no image files"):
        list_images(tmp_path / "empty") if (tmp_path / "empty").mkdir() is None else None


def test_tensor_round_trip_and_atomic_save(tmp_path):
    arr = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert (tensor_to_uint8(uint8_to_tensor(arr)) == arr).all()
    save_image(tmp_path / "o.png", arr)
    assert (read_image(tmp_path / "o.png") == arr).all()
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temporary file left behind


def test_atomic_outputs_have_normal_permissions(tmp_path):
    import os
    import stat

    from condsynth.io.atomic import atomic_dir

    save_image(tmp_path / "p.png", np.zeros((2, 2, 3), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "p.png").stat().st_mode) == 0o666 & ~umask
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("x")
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o777 & ~umask
