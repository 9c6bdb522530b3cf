"""experiments/confidence/compare_calibrators.py, which chooses between the designs on
dev: a run whose scores tell right from wrong entities ranks above one whose scores are
noise, on the cross-validated dev measures, and every calibrator is measured per run."""
import numpy

from conftest import load_script


def write_outcomes(path, informative, n=600, seed=0):
    rng = numpy.random.default_rng(seed)
    labels = numpy.array(["PER", "LOC", "ORG"])[rng.integers(0, 3, (2, n))]
    correct = (rng.random((2, n)) < 0.8).astype("float64")
    if informative:
        raw = numpy.clip(0.5 + 0.4 * (correct - 0.5) + rng.normal(0, 0.15, (2, n)), 0.01, 0.999)
    else:
        raw = rng.uniform(0.01, 0.999, (2, n))
    numpy.savez(path, dev_raw=raw[0], dev_correct=correct[0], dev_labels=labels[0], dev_doc_index=numpy.arange(n) // 3,
                test_raw=raw[1], test_correct=correct[1], test_labels=labels[1], test_doc_index=numpy.arange(n) // 3)


def test_informative_scores_win_on_dev(tmp_path, capsys):
    script = load_script("experiments/confidence/compare_calibrators.py")
    (tmp_path / "good").mkdir()
    (tmp_path / "noise").mkdir()
    write_outcomes(tmp_path / "good" / "outcomes.npz", informative=True)
    write_outcomes(tmp_path / "noise" / "outcomes.npz", informative=False)
    good = script.measures(tmp_path / "good" / "outcomes.npz")
    noise = script.measures(tmp_path / "noise" / "outcomes.npz")
    assert set(good) == set(script.KINDS)
    for kind in script.KINDS:
        assert good[kind][0]["auroc"] > 0.9 > 0.6 > noise[kind][0]["auroc"]
        assert good[kind][0]["brier"] < noise[kind][0]["brier"]
    script.main([str(tmp_path / "good" / "outcomes.npz"), str(tmp_path / "noise" / "outcomes.npz")])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| good") or line.startswith("| noise")]
    assert len(rows) == 2 * len(script.KINDS)


def test_knowing_what_training_saw_ranks_better_where_it_matters(tmp_path):
    """Outcomes where seen entities are right far more often than the rest, at the same raw
    score: calibrate --train's calibrators rank them on dev, the plain ones cannot."""
    script = load_script("experiments/confidence/compare_calibrators.py")
    rng = numpy.random.default_rng(1)
    n = 900
    seen = (rng.random((2, n)) < 0.5).astype("float64")
    correct = (rng.random((2, n)) < numpy.where(seen == 1, 0.97, 0.7)).astype("float64")
    raw = rng.uniform(0.5, 0.999, (2, n))
    texts = numpy.where(seen == 1, "seen", "new").astype(object) + numpy.arange(n).astype(str)
    numpy.savez(tmp_path / "outcomes.npz", **{f"{part}_{k}": v[i] for i, part in enumerate(("dev", "test")) for k, v in (
        ("raw", raw), ("correct", correct), ("labels", numpy.full((2, n), "PER")), ("texts", texts.astype(str)),
        ("seen", seen), ("doc_index", numpy.tile(numpy.arange(n) // 3, (2, 1))))})
    out = script.measures(tmp_path / "outcomes.npz")
    assert set(out) == set(script.KINDS) | set(script.SEEN_KINDS) | {script.WITH_LENGTH}
    for kind in (*script.SEEN_KINDS, script.WITH_LENGTH):
        assert out[kind][0]["auroc"] > 0.7 > 0.6 > out["isotonic"][0]["auroc"]


def test_a_label_missing_from_a_fold_or_from_dev_gets_the_pooled_curve(tmp_path):
    """Tweets have ten entity types, some rare: one that only a single dev document holds is
    missing from four folds' fitted outcomes, and one that only test holds from dev entirely.
    Every calibrator still scores every entity (a probability), none crashes."""
    script = load_script("experiments/confidence/compare_calibrators.py")
    path = tmp_path / "outcomes.npz"
    write_outcomes(path, informative=True)
    d = dict(numpy.load(path))
    d["dev_labels"][:2] = "EVENT"  # doc 0 only
    d["test_labels"][:2] = "PRODUCT"  # never in dev
    numpy.savez(path, **d)
    out = script.measures(path)
    assert set(out) == set(script.KINDS)
    for dev, test in out.values():
        assert dev["auroc"] > 0.9 and test["auroc"] > 0.9
