"""experiments/confidence/ece_noise.py: on outcomes whose test entities are right as often
as their scores say, the ECE lies within what a perfectly calibrated score shows; when
test precision falls far from dev's, the ECE rises above that range, and random re-splits
of the same documents rarely give so wide a gap."""
import numpy

from conftest import load_script


def noise_of(path):
    return load_script("experiments/confidence/ece_noise.py").noise(path)


def write_outcomes(path, test_right_rate=None, n=400, seed=0):
    rng = numpy.random.default_rng(seed)
    raw = rng.uniform(0.05, 0.999, (2, n))
    correct = (rng.random((2, n)) < raw).astype("float64")  # right as often as the raw score says
    if test_right_rate is not None:
        correct[1] = (rng.random(n) < test_right_rate).astype("float64")
    numpy.savez(path, dev_raw=raw[0], dev_correct=correct[0], test_raw=raw[1], test_correct=correct[1],
                dev_doc_index=numpy.arange(n) // 2, test_doc_index=numpy.arange(n) // 2)


def test_calibrated_test_set_sits_within_the_noise(tmp_path):
    write_outcomes(tmp_path / "ok.npz")
    r = noise_of(tmp_path / "ok.npz")
    assert r["entities"] == 400 and 0 < r["ideal_median"] < 0.1
    assert r["ece"] <= r["ideal_95th"] + 0.02
    assert r["ece_95"][0] <= r["ece"] <= r["ece_95"][1]
    assert abs(r["precision_gap"]) < 0.1 and r["resplits_as_wide"] > 0.05


def test_a_dev_test_precision_gap_shows_above_the_noise(tmp_path):
    write_outcomes(tmp_path / "shifted.npz", test_right_rate=0.2)
    r = noise_of(tmp_path / "shifted.npz")
    assert r["test_precision"] < r["dev_precision"] - 0.2
    assert r["ece"] > r["ideal_95th"] + 0.1
    assert r["precision_gap"] > 0.2 and r["resplits_as_wide"] < 0.01
