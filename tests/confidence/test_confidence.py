"""Entity probabilities: beam_ner + ner_confidence on a tiny random LLaMA, trained a few steps."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from confection import ConfigValidationError
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import fix_random_seed

from conftest import NER_MODEL, ROOT, TRAIN, make_nlp
from spacy_llama_ner.calibration import (
    expected_calibration_error,
    fit_temperature,
    outcomes,
    pr_curve,
    precision_above,
)
from spacy_llama_ner.confidence import ConfidenceConfigError, EntityConfidence, beam_marginals
from spacy_llama_ner.scores import CANDIDATES_KEY, EntityScoresUnavailable, entity_scores, require_scores



def beam_nlp(model_dir, ner_beam_width=4, **confidence):
    nlp = make_nlp(model_dir, with_ner=False)
    nlp.add_pipe("beam_ner", name="ner", config={"beam_width": ner_beam_width, "beam_update_prob": 0.5, "model": NER_MODEL})
    nlp.add_pipe("ner_confidence", config={"threshold": 0.0, **confidence})
    return nlp


@pytest.fixture(scope="module")
def trained(tiny_llama):
    fix_random_seed(0)
    nlp = beam_nlp(tiny_llama)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(12):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("beam-pipeline") / "model"
    trained.to_disk(path)
    return path


TEXTS = [t for t, _ in TRAIN] + ["Johnson said on Friday that the bank in Tokyo lost .", ""]


# ---------------------------------------------------------------- the scores


def test_probabilities_with_the_best_parse_in_doc_ents(trained):
    docs = list(trained.pipe(TEXTS))
    assert any(doc.ents for doc in docs), "the trained pipeline should find entities in its training texts"
    for doc in docs:
        group = doc.spans[CANDIDATES_KEY]
        scores = numpy.asarray(group.attrs["scores"])
        assert len(scores) == len(group)
        assert ((scores >= 0.0) & (scores <= 1.0)).all()
        for ent in doc.ents:  # every entity of the best parse is scored
            assert ent._.score is not None and 0.0 <= ent._.score <= 1.0
            assert entity_scores(doc)[(ent.start_char, ent.end_char, ent.label_)] == pytest.approx(ent._.score)
    # beam parses with several candidates: probabilities below 1 exist on some text
    assert any(s < 0.999 for doc in docs for s in doc.spans[CANDIDATES_KEY].attrs["scores"])
    assert docs[-1].spans[CANDIDATES_KEY].attrs["scores"].size == 0  # empty text: an empty group


def test_scores_are_the_beam_marginals_of_the_ner_beam(trained):
    conf = trained.get_pipe("ner_confidence")
    doc = trained(TEXTS[1])
    parses = conf.beam_parses([doc])[0]
    assert parses and abs(sum(p for p, _ in parses) - 1.0) < 1e-4
    best = max(parses, key=lambda item: item[0])[1]
    assert set(best) == {(e.start, e.end, e.label_) for e in doc.ents}  # the second beam search agrees with beam_ner
    marginals = beam_marginals(parses)
    got = {(s.start, s.end, s.label_): float(p) for s, p in zip(doc.spans[CANDIDATES_KEY], doc.spans[CANDIDATES_KEY].attrs["scores"])}
    assert got == pytest.approx(marginals, abs=1e-6)


def test_threshold_keeps_candidates_above_it_and_the_best_parse(trained):
    conf = trained.get_pipe("ner_confidence")
    text = TEXTS[2]
    all_candidates = entity_scores(trained(text))
    try:
        for threshold in (0.05, 0.3, 0.7, 1.0):
            conf.threshold = threshold
            doc = trained(text)
            ents = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
            kept = entity_scores(doc)
            expected = {k for k, p in all_candidates.items() if p >= threshold} | ents
            assert set(kept) == expected
            assert all(p >= threshold for k, p in kept.items() if k not in ents)
    finally:
        conf.threshold = 0.0


def test_beam_marginals_and_temperature():
    parses = [(0.6, [(0, 2, "PER"), (5, 6, "LOC")]), (0.3, [(0, 2, "ORG")]), (0.1, [(0, 2, "PER")])]
    m = beam_marginals(parses)
    assert m == pytest.approx({(0, 2, "PER"): 0.7, (5, 6, "LOC"): 0.6, (0, 2, "ORG"): 0.3})
    hot = beam_marginals(parses, temperature=1000.0)  # flat: each parse ~1/3
    assert hot[(0, 2, "PER")] == pytest.approx(2 / 3, abs=1e-2)
    cold = beam_marginals(parses, temperature=0.01)  # the best parse only
    assert cold[(5, 6, "LOC")] == pytest.approx(1.0) and cold[(0, 2, "ORG")] == pytest.approx(0.0)
    assert beam_marginals([]) == {}


# ---------------------------------------------------------------- storage


def test_docbin_and_to_bytes_keep_the_scores(trained):
    docs = list(trained.pipe(TEXTS[:3]))
    before = [entity_scores(doc) for doc in docs]
    assert any(before)
    restored = list(DocBin().from_bytes(DocBin(docs=docs).to_bytes()).get_docs(trained.vocab))
    assert [entity_scores(d) for d in restored] == [pytest.approx(b) for b in before]
    for doc in docs:
        back = Doc(trained.vocab).from_bytes(doc.to_bytes())
        assert entity_scores(back) == pytest.approx(entity_scores(doc))
        assert [e._.score for e in back.ents] == pytest.approx([e._.score for e in doc.ents])


def test_no_scores_reads_as_empty_and_none(tiny_llama):
    doc = spacy.blank("en")("Peter Smith flew to London .")
    doc.ents = [doc.char_span(0, 11, label="PER")]
    assert entity_scores(doc) == {}
    assert doc.ents[0]._.score is None


def test_save_and_spacy_load_offline_in_a_fresh_process(trained, saved):
    expected = [[(e.text, e.label_, round(e._.score, 5)) for e in trained(t).ents] for t in TEXTS[:3]]
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "out = [[(e.text, e.label_, round(e._.score, 5)) for e in nlp(t).ents] for t in json.loads(sys.argv[2])]\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", script, str(saved), json.dumps(TEXTS[:3])], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got == [[list(x) for x in doc] for doc in expected]


def test_fitted_temperature_is_saved_and_a_config_temperature_wins(trained, tmp_path):
    conf = trained.get_pipe("ner_confidence")
    conf.temperature = 2.5
    try:
        trained.to_disk(tmp_path / "m")
        assert spacy.load(tmp_path / "m").get_pipe("ner_confidence").temperature == pytest.approx(2.5)
        explicit = spacy.load(tmp_path / "m", config={"components": {"ner_confidence": {"temperature": 1.0}}})
        assert explicit.get_pipe("ner_confidence").temperature == 1.0
        restored = EntityConfidence(trained, "c2").from_bytes(conf.to_bytes())
        assert restored.temperature == pytest.approx(2.5)
    finally:
        conf.temperature = 1.0


# ---------------------------------------------------------------- settings and errors


@pytest.mark.parametrize("threshold", [-0.1, 1.5, 1.0001])
def test_threshold_outside_0_1_is_a_named_error(tiny_llama, threshold):
    with pytest.raises(ConfidenceConfigError, match=r"components\.ner_confidence\.threshold.*\[0, 1\]"):
        beam_nlp(tiny_llama, threshold=threshold)


@pytest.mark.parametrize("threshold", ["high", None])
def test_threshold_of_the_wrong_type_is_named_by_spacy(tiny_llama, threshold):
    with pytest.raises(ConfigValidationError, match=r"ner_confidence -> threshold"):
        beam_nlp(tiny_llama, threshold=threshold)


@pytest.mark.parametrize("width", [0, -3])
def test_beam_width_below_1_is_a_named_error(tiny_llama, width):
    with pytest.raises(ConfidenceConfigError, match=r"components\.ner_confidence\.beam_width.*>= 1"):
        beam_nlp(tiny_llama, beam_width=width)
    with pytest.raises(ConfidenceConfigError, match=r"components\.ner\.beam_width.*>= 1"):
        beam_nlp(tiny_llama, ner_beam_width=width)


def test_temperature_must_be_positive(tiny_llama):
    with pytest.raises(ConfidenceConfigError, match=r"temperature.*> 0"):
        beam_nlp(tiny_llama, temperature=0.0)


def test_greedy_pipeline_asked_for_scores_says_how_to_get_them(tiny_llama):
    greedy = make_nlp(tiny_llama)
    with pytest.raises(EntityScoresUnavailable, match=r"greedy.*configs/ner_beam\.cfg"):
        require_scores(greedy)
    with pytest.raises(EntityScoresUnavailable, match=r"'ner' is greedy.*configs/ner_beam\.cfg.*beam_width"):
        greedy.add_pipe("ner_confidence")
    # decoding a greedy-trained model with a beam is allowed when asked for explicitly
    greedy.add_pipe("ner_confidence", config={"beam_width": 4})
    require_scores(greedy)


def test_component_needs_a_ner_before_it(tiny_llama):
    nlp = make_nlp(tiny_llama, with_ner=False)
    with pytest.raises(ConfidenceConfigError, match=r"components\.ner_confidence\.ner.*no component 'ner'"):
        nlp.add_pipe("ner_confidence")


def test_beam_config_builds_the_pipeline(tiny_llama):
    config = spacy.util.load_config(ROOT / "configs" / "ner_beam.cfg", overrides={"paths.model": str(tiny_llama)})
    assert config["nlp"]["pipeline"] == ["transformer", "ner", "ner_confidence"]
    assert config["components"]["ner"]["factory"] == "beam_ner"
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    require_scores(nlp)
    assert nlp.get_pipe("ner").cfg["beam_width"] >= 2
    bad = spacy.util.load_config(
        ROOT / "configs" / "ner_beam.cfg",
        overrides={"paths.model": str(tiny_llama), "components.ner_confidence.threshold": 2.0},
    )
    with pytest.raises(ConfidenceConfigError, match="threshold"):
        spacy.util.load_model_from_config(bad, auto_fill=True, validate=True)


# ---------------------------------------------------------------- calibration measures


def test_calibration_measures():
    scores = numpy.array([0.95, 0.95, 0.05, 0.05, 0.6])
    correct = numpy.array([1.0, 1.0, 0.0, 0.0, 0.0])
    assert expected_calibration_error(scores, correct) == pytest.approx((2 * 0.05 + 2 * 0.05 + 0.6) / 5)
    assert expected_calibration_error(numpy.ones(4), numpy.zeros(4)) == pytest.approx(1.0)
    assert precision_above(scores, correct, 0.5) == {"threshold": 0.5, "n": 3, "precision": pytest.approx(2 / 3)}
    rows = pr_curve(scores, correct, n_gold=4, thresholds=[0.0, 0.5, 0.9])
    assert [r["n"] for r in rows] == [5, 3, 2]
    assert rows[2]["precision"] == 1.0 and rows[2]["recall"] == 0.5


def test_fit_temperature_recovers_the_overconfidence():
    # each doc: a parse with entity e at probability 0.9, else nothing; e is right 70% of the time.
    # The temperature that maps 0.9 to 0.7: logit(0.9) / logit(0.7) = 2.59
    parses = [[(0.9, [(0, 1, "PER")]), (0.1, [])] for _ in range(100)]
    gold = [{(0, 1, "PER")} if i < 70 else set() for i in range(100)]
    t, info = fit_temperature(parses, gold)
    assert t == pytest.approx(numpy.log(9) / numpy.log(7 / 3), rel=0.02)
    assert info["nll_fitted"] < info["nll_t1"]
    scores, correct = outcomes(parses, gold, t)
    assert scores.mean() == pytest.approx(0.7, abs=0.01)
