"""Entity probabilities: scored_beam_ner on a tiny random LLaMA trained a few steps, its
calibrator, the calibrate command and the measures of the study."""
import json
import os
import re
import subprocess
import sys

import numpy
import pytest
import spacy
from confection import ConfigValidationError
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import fix_random_seed

from conftest import NER_MODEL, ROOT, TRAIN, make_nlp
from spacy_llama_ner.confidence import (
    CANDIDATES_KEY,
    Calibrator,
    CalibratorFileError,
    EntityScoresUnavailable,
    ScoresConfigError,
    entity_scores,
    require_scores,
)
from spacy_llama_ner.confidence.measures import (
    auroc,
    brier,
    entity_outcomes,
    expected_calibration_error,
    fresh_copies,
    kept_at,
    reliability,
    summary,
)

TEXTS = [t for t, _ in TRAIN] + ["Johnson said on Friday that the bank in Tokyo lost .", ""]


def scored_nlp(model_dir, **ner):
    nlp = make_nlp(model_dir, with_ner=False)
    nlp.add_pipe("scored_beam_ner", name="ner", config={"beam_width": 4, "model": NER_MODEL, "threshold": 0.0, **ner})
    return nlp


@pytest.fixture(scope="module")
def trained(tiny_llama):
    fix_random_seed(0)
    nlp = scored_nlp(tiny_llama)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(12):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def gold_docbin(trained, tmp_path_factory):
    """TRAIN as annotated docs on disk, the dev set of the calibrate tests."""
    path = tmp_path_factory.mktemp("dev") / "dev.spacy"
    docs = [Example.from_dict(trained.make_doc(t), {"entities": e}).reference for t, e in TRAIN * 3]
    DocBin(docs=docs).to_disk(path)
    return path


def transformer_only(nlp, texts):
    """Fresh docs with the transformer's output and no NER annotation."""
    return list(nlp.get_pipe("transformer").pipe(nlp.make_doc(t) for t in texts))


def marginals(group, attr="raw_scores"):
    return {(s.start, s.end, s.label_): float(p) for s, p in zip(group, group.attrs[attr])}


# ---------------------------------------------------------------- the scores


def test_a_second_beam_over_annotated_docs_scores_every_entity_1(trained):
    """The old design's bug, shown: spaCy's NER keeps doc.ents fixed, so a beam search over
    docs it already annotated contains every entity in every parse."""
    ner = trained.get_pipe("ner")
    annotated = list(trained.pipe(TEXTS[:-1]))
    assert any(doc.ents for doc in annotated)
    again = ner.scored_ents(ner.beam_parse(annotated, beam_width=4))
    assert all(again[i][(e.start, e.end, e.label_)] > 0.9999 for i, d in enumerate(annotated) for e in d.ents)
    fresh = ner.scored_ents(ner.beam_parse(transformer_only(trained, TEXTS[:-1]), beam_width=4))
    assert any(fresh[i][(e.start, e.end, e.label_)] < 0.99 for i, d in enumerate(annotated) for e in d.ents)


def test_scores_are_the_marginals_of_the_beam_that_decoded_doc_ents(trained):
    docs = list(trained.pipe(TEXTS))
    ner = trained.get_pipe("ner")
    beams = ner.beam_parse(transformer_only(trained, TEXTS[:-1]), beam_width=4, beam_density=ner.cfg["beam_density"])
    expected = ner.scored_ents(beams)
    for doc, exp in zip(docs, expected):
        got = marginals(doc.spans[CANDIDATES_KEY])
        assert {(e.start, e.end, e.label_) for e in doc.ents} <= set(got)
        assert got == pytest.approx({k: min(1.0, p) for k, p in exp.items()}, abs=1e-6)
    ent_scores = [e._.score for d in docs for e in d.ents]
    assert all(0.0 <= s <= 1.0 for s in ent_scores)
    assert any(s < 0.99 for s in ent_scores), "some entity of doc.ents should be less than certain"
    assert docs[-1].spans[CANDIDATES_KEY].attrs["scores"].size == 0  # empty text: an empty group


def test_threshold_keeps_candidates_above_it_and_every_entity(trained):
    ner = trained.get_pipe("ner")
    first = trained(TEXTS[2])
    everything = marginals(first.spans[CANDIDATES_KEY])
    try:
        for threshold in (0.05, 0.3, 0.7, 1.0):
            ner.threshold = threshold
            doc = trained(TEXTS[2])
            ents = {(e.start, e.end, e.label_) for e in doc.ents}
            assert set(marginals(doc.spans[CANDIDATES_KEY])) == {k for k, p in everything.items() if p >= threshold} | ents
    finally:
        ner.threshold = 0.0


def test_entities_preset_upstream_stay_and_are_not_scored(trained, tiny_llama):
    nlp = scored_nlp(tiny_llama)
    nlp.get_pipe("ner").from_bytes(trained.get_pipe("ner").to_bytes())
    nlp.get_pipe("transformer").from_bytes(trained.get_pipe("transformer").to_bytes())
    ruler = nlp.add_pipe("entity_ruler", before="ner")
    ruler.add_patterns([{"label": "ORG", "pattern": "Reuters"}])
    doc = nlp("Reuters said Peter Smith flew to London on Monday .")
    assert ("Reuters", "ORG") in [(e.text, e.label_) for e in doc.ents]
    group = doc.spans[CANDIDATES_KEY]
    preset = [s.text for s, flag in zip(group, group.attrs["preset"]) if flag]
    assert preset == ["Reuters"]
    reuters = [e for e in doc.ents if e.text == "Reuters"][0]
    assert reuters._.score is None and reuters._.raw_score is None
    assert ("Reuters" not in {doc.text[s:e] for s, e, _ in entity_scores(doc)})


def test_docbin_and_to_bytes_keep_the_scores(trained):
    docs = list(trained.pipe(TEXTS[:3]))
    before = [entity_scores(doc) for doc in docs]
    assert any(before)
    restored = list(DocBin().from_bytes(DocBin(docs=docs).to_bytes()).get_docs(trained.vocab))
    assert [entity_scores(d) for d in restored] == [pytest.approx(b) for b in before]
    for doc in docs:
        back = Doc(trained.vocab).from_bytes(doc.to_bytes())
        assert [(e._.score, e._.raw_score) for e in back.ents] == [(e._.score, e._.raw_score) for e in doc.ents]


def test_no_scores_reads_as_empty_and_none():
    doc = spacy.blank("en")("Peter Smith flew to London .")
    doc.ents = [doc.char_span(0, 11, label="PER")]
    assert entity_scores(doc) == {}
    assert doc.ents[0]._.score is None


# ---------------------------------------------------------------- calibrate


def test_calibrate_command_fits_saves_and_spacy_load_applies_it(trained, gold_docbin, tmp_path):
    trained.to_disk(tmp_path / "model")
    run = subprocess.run(
        [sys.executable, "-m", "spacy", "llama-ner", "calibrate", str(tmp_path / "model"), str(gold_docbin), str(tmp_path / "cal"),
         "--beam-width", "6", "--beam-density", "0"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    saved = json.loads((tmp_path / "cal" / "ner" / "calibrator.json").read_text())
    assert saved["method"] == "isotonic" and saved["info"]["entities"] > 0
    assert (saved["info"]["beam_width"], saved["info"]["beam_density"]) == (6, 0.0)
    assert spacy.load(tmp_path / "cal").get_pipe("ner").cfg["beam_width"] == 6  # the calibrated pipeline decodes so
    # a fresh process reads the same calibrated scores as this one computes from the raw ones
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "print(json.dumps([[(e.text, e._.raw_score, e._.score) for e in nlp(t).ents] for t in json.loads(sys.argv[2])]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cal"), json.dumps(TEXTS[:3])],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    calibrator = Calibrator.from_dict(saved, "test")
    ner = trained.get_pipe("ner")
    before = dict(ner.cfg)
    ner.cfg.update({"beam_width": 6, "beam_density": 0.0})  # as calibrate set them
    try:
        expected = [(e.text, round(e._.raw_score, 5)) for t in TEXTS[:3] for e in trained(t).ents]
    finally:
        ner.cfg.update(before)
    assert [(text, round(raw, 5)) for doc in got for text, raw, _ in doc] == expected
    for doc in got:
        for _, raw, score in doc:
            assert score == pytest.approx(float(calibrator.apply([raw])[0]), abs=1e-6)
    assert any(raw != score for doc in got for _, raw, score in doc)


def entities_docbin(path, text, ents):
    """A one-doc DocBin: `text` with `ents` ((start_char, end_char, label)), as training data."""
    nlp = spacy.blank("en")
    DocBin(docs=[Example.from_dict(nlp.make_doc(text), {"entities": ents}).reference]).to_disk(path)
    return path


def test_calibrate_with_the_training_data_scores_seen_entities_on_their_own_curve(trained, gold_docbin, tmp_path, capsys):
    from spacy_llama_ner.confidence.calibrate import main as calibrate

    trained.to_disk(tmp_path / "model")
    # the trained pipeline finds London (right) and "the" as LOC (wrong) in the dev docs: "seen" holds both
    train = entities_docbin(tmp_path / "train.spacy", "London and the", [(0, 6, "LOC"), (11, 14, "LOC")])
    assert calibrate([str(tmp_path / "model"), str(gold_docbin), str(tmp_path / "cal"), "--train", str(train)]) == 0
    assert "have a text and label found in" in capsys.readouterr().out
    saved = json.loads((tmp_path / "cal" / "ner" / "calibrator.json").read_text())
    assert saved["training_entities"] == [["London", "LOC"], ["the", "LOC"]] and saved["info"]["training_entities"] == 2
    assert saved["by_seen"]["seen"] != saved["by_seen"]["unseen"]
    calibrator = Calibrator.from_dict(saved, "test")
    got = [(e.text, e.label_, e._.raw_score, e._.score) for t in TEXTS[:2] for e in spacy.load(tmp_path / "cal")(t).ents]
    assert got
    for text, label, raw, score in got:
        assert score == pytest.approx(float(calibrator.apply([raw], [(text, label)])[0]), abs=1e-6)
    # the same raw score reads differently on the two curves
    assert len({(round(raw, 4), score) for text, label, raw, score in got if round(raw, 4) == 1.0}) == 2
    with pytest.raises(ValueError, match="pass the \\(text, label\\)"):
        calibrator.apply([0.9])


def test_calibrate_with_training_data_it_cannot_split_on_says_so(trained, gold_docbin, tmp_path, capsys):
    from spacy_llama_ner.confidence.calibrate import main as calibrate

    trained.to_disk(tmp_path / "model")
    args = [str(tmp_path / "model"), str(gold_docbin), str(tmp_path / "cal"), "--train"]
    with pytest.raises(SystemExit) as exit:
        calibrate(args + [str(tmp_path / "nowhere.spacy")])
    assert exit.value.code == 1 and "training data not found" in capsys.readouterr().out
    assert not (tmp_path / "cal").exists()
    # the seen entities (London, three times) are all right: they get the curve of all dev entities
    only_right = entities_docbin(tmp_path / "train.spacy", "London", [(0, 6, "LOC")])
    assert calibrate(args + [str(only_right)]) == 0
    assert re.search(r"The 3 dev entities seen in training are not both right and wrong", capsys.readouterr().out.replace("\n", " "))
    saved = json.loads((tmp_path / "cal" / "ner" / "calibrator.json").read_text())
    assert saved["info"]["pooled"] == ["seen"]
    assert saved["by_seen"]["seen"] == Calibrator.fit(*fit_args(saved, tmp_path, gold_docbin)).params


def fit_args(saved, tmp_path, gold_docbin):
    """The dev outcomes the saved calibrator was fitted on: its pooled curve is the plain one."""
    nlp = spacy.load(tmp_path / "cal")
    nlp.get_pipe("ner").calibrator = None
    out = entity_outcomes(nlp, list(DocBin().from_disk(gold_docbin).get_docs(nlp.vocab)))
    return out.raw, out.correct, saved["method"]


def test_calibrate_refuses_a_pipeline_without_scores_and_missing_dev(tiny_llama, gold_docbin, tmp_path):
    make_nlp(tiny_llama).to_disk(tmp_path / "greedy")
    cmd = [sys.executable, "-m", "spacy", "llama-ner", "calibrate"]
    run = subprocess.run(cmd + [str(tmp_path / "greedy"), str(gold_docbin), str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "greedy (beam_width = 1)" in run.stdout and "configs/ner_beam.cfg" in run.stdout
    run = subprocess.run(cmd + [str(tmp_path / "nowhere"), str(gold_docbin), str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "no spaCy pipeline at" in run.stdout and "nowhere" in run.stdout
    assert not (tmp_path / "o").exists()


def test_a_damaged_calibrator_file_is_a_named_error_on_load(trained, tmp_path):
    ner = trained.get_pipe("ner")
    ner.calibrator = Calibrator("isotonic", {"x": [0.2, 0.9], "y": [0.1, 0.8]})
    try:
        trained.to_disk(tmp_path / "m")
    finally:
        ner.calibrator = None
    assert spacy.load(tmp_path / "m").get_pipe("ner").calibrator.params["y"] == [0.1, 0.8]
    file = tmp_path / "m" / "ner" / "calibrator.json"
    curve = {"x": [0.2, 0.9], "y": [0.1, 0.8]}
    for damage in ("{not json", json.dumps({"method": "magic"}), json.dumps({"method": "isotonic", "params": {"x": [0.9, 0.2], "y": [0.1, 0.8]}}),
                   json.dumps({"method": "isotonic", "by_seen": {"seen": curve}, "training_entities": [["Paris", "LOC"]]}),
                   json.dumps({"method": "isotonic", "by_seen": {"seen": curve, "unseen": curve}, "training_entities": ["Paris"]})):
        file.write_text(damage)
        with pytest.raises(CalibratorFileError, match=r"calibrator\.json.*calibrate"):
            spacy.load(tmp_path / "m")


def test_calibrator_survives_to_bytes(trained):
    ner = trained.get_pipe("ner")
    ner.calibrator = Calibrator("platt", {"a": [0.5], "b": [-0.2]})
    try:
        data = trained.to_bytes()
    finally:
        ner.calibrator = None
    restored = scored_nlp_from_bytes(trained, data)
    assert restored.get_pipe("ner").calibrator.params == {"a": [0.5], "b": [-0.2]}
    curves = {"seen": {"a": [1.0], "b": [2.0]}, "unseen": {"a": [0.5], "b": [-0.2]}}
    ner.calibrator = Calibrator("platt", by_seen=curves, training_entities=[("London", "LOC")])
    try:
        data = trained.to_bytes()
    finally:
        ner.calibrator = None
    restored = scored_nlp_from_bytes(trained, data).get_pipe("ner").calibrator
    assert restored.by_seen == curves and restored.training_entities == {("London", "LOC")}
    assert restored.apply([0.5, 0.5], [("London", "LOC"), ("Paris", "LOC")]).tolist() == pytest.approx([0.881, 0.450], abs=1e-3)


def scored_nlp_from_bytes(trained, data):
    nlp = spacy.util.load_model_from_config(trained.config, auto_fill=False)
    return nlp.from_bytes(data)


def test_calibrators_learn_the_rate_of_being_right():
    rng = numpy.random.default_rng(0)
    raw = rng.uniform(0.3, 0.999, 6000)

    def rate(p):  # overconfident scores: the true rate of being right is lower
        z = 1.5 * numpy.log(p / (1 - p)) - 2.0
        return 1 / (1 + numpy.exp(-z))

    right = (rng.uniform(size=len(raw)) < rate(raw)).astype(float)
    probe = numpy.array([0.6, 0.8, 0.95, 0.99])
    for method in ("isotonic", "platt"):
        got = Calibrator.fit(raw, right, method).apply(probe)
        assert got == pytest.approx(rate(probe), abs=0.06), method
    with pytest.raises(ValueError, match=r"\(2, all right\): it needs right and wrong ones"):
        Calibrator.fit([0.9, 0.8], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\(none\)"):
        Calibrator.fit([], [])


def test_a_calibrator_with_the_training_entities_learns_each_groups_rate():
    rng = numpy.random.default_rng(0)
    raw = rng.uniform(0.3, 0.999, 6000)
    entities = [(f"name{i % 300}", "PER") for i in range(len(raw))]
    training = [(f"name{i}", "PER") for i in range(100)]  # a third of the entities are seen
    seen = numpy.asarray([int(t[4:]) < 100 for t, _ in entities])
    rate = numpy.where(seen, 0.95, 0.6)  # right this often, whatever the raw score
    right = (rng.uniform(size=len(raw)) < rate).astype(float)
    for method in ("isotonic", "platt"):
        calibrator = Calibrator.fit(raw, right, method, entities=entities, training_entities=training)
        restored = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())), "test")
        got = restored.apply([0.5, 0.5, 0.95, 0.95], [("name1", "PER"), ("name200", "PER")] * 2)
        assert got == pytest.approx([0.95, 0.6, 0.95, 0.6], abs=0.06), method
        assert Calibrator.fit(raw, right, method).apply([0.5])[0] == pytest.approx(rate.mean(), abs=0.06)
    # c and d, not seen, are both right: they get the curve of all four
    args = ([0.9, 0.4, 0.7, 0.6], [1.0, 0.0, 1.0, 1.0], "isotonic")
    pooled = Calibrator.fit(*args, entities=[("a", "X"), ("b", "X"), ("c", "X"), ("d", "X")], training_entities=[("a", "X"), ("b", "X")])
    assert pooled.info["pooled"] == ["unseen"] and pooled.by_seen["unseen"] == Calibrator.fit(*args).params


# ---------------------------------------------------------------- settings and errors


@pytest.mark.parametrize("key,value,message", [
    ("threshold", 1.5, r"components\.ner\.threshold.*\[0, 1\]"),
    ("threshold", -0.1, r"components\.ner\.threshold.*\[0, 1\]"),
    ("beam_width", 1, r"components\.ner\.beam_width.*>= 2"),
    ("beam_density", 1.0, r"components\.ner\.beam_density.*\[0, 1\)"),
    ("spans_key", "my_scores", r"components\.ner\.spans_key: must be \"ner_candidates\".*got 'my_scores'"),
])
def test_bad_settings_are_named_errors(tiny_llama, key, value, message):
    with pytest.raises(ScoresConfigError, match=message):
        scored_nlp(tiny_llama, **{key: value})


def test_threshold_of_the_wrong_type_is_named_by_spacy(tiny_llama):
    with pytest.raises(ConfigValidationError, match=r"threshold"):
        scored_nlp(tiny_llama, threshold="high")


def test_greedy_pipeline_asked_for_scores_says_how_to_get_them(tiny_llama):
    with pytest.raises(EntityScoresUnavailable, match=r"greedy.*scored_beam_ner.*configs/ner_beam\.cfg.*calibrate"):
        require_scores(make_nlp(tiny_llama))


def test_beam_config_builds_a_scored_pipeline(tiny_llama):
    config = spacy.util.load_config(ROOT / "configs" / "ner_beam.cfg", overrides={"paths.model": str(tiny_llama)})
    assert config["components"]["ner"]["factory"] == "scored_beam_ner"
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    require_scores(nlp)


# ---------------------------------------------------------------- measures


def test_measures_on_numbers_worked_by_hand():
    scores = numpy.array([0.1, 0.2, 0.8, 0.9])
    correct = numpy.array([0.0, 1.0, 1.0, 1.0])
    # two equal-mass bins: {0.1, 0.2} accuracy 0.5 mean 0.15; {0.8, 0.9} accuracy 1 mean 0.85
    assert expected_calibration_error(scores, correct, n_bins=2) == pytest.approx((2 * 0.35 + 2 * 0.15) / 4)
    assert brier(scores, correct) == pytest.approx((0.01 + 0.64 + 0.04 + 0.01) / 4)
    assert auroc(scores, correct) == pytest.approx(1.0)
    assert auroc(numpy.full(4, 0.7), correct) == pytest.approx(0.5)
    assert kept_at(scores, correct, 0.8) == {"threshold": 0.8, "n": 2, "share": 0.5, "precision": 1.0}  # >= 0.8
    s = summary(scores, correct, constant=0.75)
    assert s["constant"]["brier"] == pytest.approx(0.1875) and s["brier"] < s["constant"]["brier"]


def test_reliability_intervals_contain_the_bin_accuracy():
    rng = numpy.random.default_rng(1)
    scores = rng.uniform(size=600)
    correct = (rng.uniform(size=600) < scores).astype(float)
    rows = reliability(scores, correct, doc_index=numpy.arange(600) // 3, n_bins=5, n_boot=300)
    assert len(rows) == 5 and sum(r["n"] for r in rows) == 600
    for row in rows:
        assert row["low"] <= row["accuracy"] <= row["high"] and row["high"] - row["low"] < 0.3


def test_outcomes_run_on_fresh_copies(trained):
    gold = [Example.from_dict(trained.make_doc(t), {"entities": e}).reference for t, e in TRAIN]
    out = entity_outcomes(trained, gold)
    assert len(out.raw) == len(out.correct) == len(out.labels) and out.n_docs == len(gold)
    assert all(not doc.ents for doc in fresh_copies(trained.vocab, gold))
    assert 0.0 < out.precision <= 1.0 and out.prf["f"] > 0.0
