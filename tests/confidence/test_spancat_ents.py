"""Entity probabilities from the span-classifier design: spaCy's spancat_singlelabel on a
tiny random LLaMA, scored_spancat_ents writing its spans to doc.ents, the augmenter that
trains it from NER data, calibration, saving, and configs/ner_spancat.cfg trained with
`spacy train` and calibrated with the calibrate command."""
import json
import os
import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed

from conftest import ROOT, TRAIN, make_nlp
from spacy_llama_ner.confidence import CANDIDATES_KEY, Calibrator, ScoresConfigError, entity_scores
from spacy_llama_ner.confidence.calibrate import main as calibrate_main

LISTENER = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
            "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "*"}
# the calibrate test's dev set: TRAIN, and TRAIN with labels the model did not learn
# (London as ORG, Maria Johnson as ORG), so that some of its entities are wrong
DEV = [
    ("Peter Smith flew to London on Monday .", [(0, 11, "PER"), (20, 26, "ORG")]),
    ("Maria Johnson works for the European Union in Paris .", [(0, 13, "ORG"), (28, 42, "ORG"), (46, 51, "LOC")]),
]
TEXTS = [t for t, _ in TRAIN] + ["Johnson said on Friday that the bank in Tokyo lost .", ""]


def spancat_nlp(model_dir, max_size=4, before=None):
    nlp = make_nlp(model_dir, with_ner=False)
    if before:
        nlp.add_pipe(before[0], config=before[1])
    nlp.add_pipe("spancat_singlelabel", name="spancat", config={
        "allow_overlap": False, "spans_key": "sc",
        "suggester": {"@misc": "spacy.ngram_range_suggester.v1", "min_size": 1, "max_size": max_size},
        "model": {"@architectures": "spacy.SpanCategorizer.v1", "scorer": {"@layers": "Softmax.v2"}, "tok2vec": LISTENER,
                  "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 32}},
    })
    nlp.add_pipe("scored_spancat_ents", name="ner")
    return nlp


def examples_of(nlp):
    """TRAIN through the augmenter, as the config's corpora give it to spancat."""
    augment = spacy.registry.augmenters.get("spacy_llama_ner.ents_as_spans.v1")("sc")
    return [eg for t, e in TRAIN for eg in augment(nlp, Example.from_dict(nlp.make_doc(t), {"entities": e}))]


@pytest.fixture(scope="module")
def trained(tiny_llama):
    fix_random_seed(0)
    nlp = spancat_nlp(tiny_llama)
    examples = examples_of(nlp)
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(80):
        nlp.update(examples, sgd=optimizer)
    return nlp


def test_the_augmenter_copies_the_entities_to_the_spans_key(tiny_llama):
    nlp = spacy.blank("en")
    example = Example.from_dict(nlp.make_doc(TRAIN[1][0]), {"entities": TRAIN[1][1]})
    augmented, = spacy.registry.augmenters.get("spacy_llama_ner.ents_as_spans.v1")("sc")(nlp, example)
    assert [(s.start_char, s.end_char, s.label_) for s in augmented.reference.spans["sc"]] == TRAIN[1][1]
    assert "sc" not in example.reference.spans  # the corpus doc itself is left as it was


def test_ents_are_spancats_spans_with_its_probabilities(trained):
    docs = list(trained.pipe(TEXTS))
    assert any(doc.ents for doc in docs)
    for doc in docs:
        spans = doc.spans["sc"]
        probabilities = numpy.asarray(spans.attrs.get("scores", []), dtype="float32").reshape(-1)
        expected = {(s.start, s.end, s.label_): float(p) for s, p in zip(spans, probabilities)}
        assert [(e.start, e.end, e.label_) for e in doc.ents] == sorted(expected)
        assert {(e.start, e.end, e.label_): e._.raw_score for e in doc.ents} == pytest.approx(expected)
        assert {(e.start, e.end, e.label_): e._.score for e in doc.ents} == pytest.approx(expected)  # no calibrator yet
        assert list(doc.spans[CANDIDATES_KEY].attrs["preset"]) == [False] * len(doc.ents)
    scores = [e._.score for doc in docs for e in doc.ents]
    assert all(0.0 < s < 1.0 for s in scores) and len(set(scores)) > 1  # probabilities, not 1.0 for every entity


def test_entities_preset_upstream_stay_and_are_not_scored(trained):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", source=trained)
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "ORG", "pattern": "Paris"}])
    nlp.add_pipe("spancat", source=trained)
    nlp.add_pipe("ner", source=trained)
    text = TRAIN[1][0]
    alone = {(e.start, e.end, e.label_) for e in trained(text).ents}
    doc = nlp(text)
    paris = next(e for e in doc.ents if e.text == "Paris")
    assert paris.label_ == "ORG" and paris._.score is None and paris._.raw_score is None
    group = doc.spans[CANDIDATES_KEY]
    assert [bool(p) for s, p in zip(group, group.attrs["preset"]) if s.text == "Paris"] == [True]
    others = {(e.start, e.end, e.label_) for e in doc.ents if e.text != "Paris"}
    assert others == {ent for ent in alone if not ent[0] <= paris.start < ent[1]}
    assert all(e._.score is not None for e in doc.ents if e.text != "Paris")
    assert (paris.start_char, paris.end_char, "ORG") not in entity_scores(doc)


def test_initialize_names_a_missing_spancat_and_entities_it_never_suggests(tiny_llama):
    nlp = make_nlp(tiny_llama, with_ner=False)
    nlp.add_pipe("scored_spancat_ents", name="ner")
    with pytest.raises(ValueError, match=r"\[ner\] needs a spancat_singlelabel with spans_key = \"sc\" before it"):
        nlp.initialize(lambda: examples_of(nlp))
    nlp = spancat_nlp(tiny_llama, max_size=1)  # "Maria Johnson", "European Union" are 2 tokens
    with pytest.raises(ValueError, match=r"3 training entities are never suggested by component 'spancat'.*"
                                         r"the longest: 2 tokens.*raise max_size in \[components.spancat.suggester\]"):
        nlp.initialize(lambda: examples_of(nlp))


def test_a_candidates_key_other_than_the_one_scores_are_read_from_is_a_named_error(tiny_llama):
    nlp = make_nlp(tiny_llama, with_ner=False)
    with pytest.raises(ScoresConfigError, match=r"\[scored_spancat_ents\] components\.ner\.candidates_key: "
                                                r"must be \"ner_candidates\".*got 'mine'"):
        nlp.add_pipe("scored_spancat_ents", name="ner", config={"candidates_key": "mine"})


def test_calibrator_survives_to_disk_and_to_bytes(trained, tmp_path):
    ner = trained.get_pipe("ner")
    ner.calibrator = Calibrator("platt", {"a": [0.5], "b": [-0.2]})
    try:
        trained.to_disk(tmp_path / "m")
        data = trained.to_bytes()
        expected = [(e.text, e._.score) for e in trained(TRAIN[1][0]).ents]
    finally:
        ner.calibrator = None
    loaded = spacy.load(tmp_path / "m")
    assert loaded.get_pipe("ner").calibrator.params == {"a": [0.5], "b": [-0.2]}
    got = [(e.text, e._.score) for e in loaded(TRAIN[1][0]).ents]
    assert got == [(t, pytest.approx(s, abs=1e-6)) for t, s in expected] and expected
    restored = spacy.util.load_model_from_config(trained.config, auto_fill=False).from_bytes(data)
    assert restored.get_pipe("ner").calibrator.params == {"a": [0.5], "b": [-0.2]}


def test_config_trains_with_spacy_train_and_calibrate_fits_it(tiny_llama, tmp_path, capsys):
    """configs/ner_spancat.cfg as a user runs it: `spacy train` on NER .spacy files (the
    augmenter gives spancat its spans), then `calibrate`, which refuses beam settings."""
    nlp = spacy.blank("en")
    docs = [Example.from_dict(nlp.make_doc(t), {"entities": e}).reference for t, e in TRAIN * 4]
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    dev = [Example.from_dict(nlp.make_doc(t), {"entities": e}).reference for t, e in TRAIN + DEV]
    DocBin(docs=dev).to_disk(tmp_path / "dev.spacy")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    train = subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(ROOT / "configs" / "ner_spancat.cfg"), "--output", str(tmp_path / "out"),
         "--paths.train", str(tmp_path / "train.spacy"), "--paths.dev", str(tmp_path / "dev.spacy"),
         "--paths.model", str(tiny_llama), "--training.max_steps", "40", "--training.eval_frequency", "20",
         "--training.optimizer.learn_rate.initial_rate", "0.001", "--training.optimizer.learn_rate.warmup_steps", "2",
         "--training.optimizer.learn_rate.total_steps", "40", "--training.batcher.size", "100"],
        capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    meta = json.loads((tmp_path / "out" / "model-best" / "meta.json").read_text())
    assert meta["performance"]["ents_f"] > 0 and meta["performance"]["spans_sc_f"] == meta["performance"]["ents_f"]

    calibrate = [sys.executable, "-m", "spacy", "llama-ner", "calibrate", str(tmp_path / "out" / "model-best"),
                 str(tmp_path / "dev.spacy"), str(tmp_path / "cal")]
    with pytest.raises(SystemExit) as refused:  # in this process: the command's main, as the CLI calls it
        calibrate_main(calibrate[5:] + ["--beam-width", "8"])
    assert refused.value.code == 1 and not (tmp_path / "cal").exists()
    assert "[scored_spancat_ents] components.ner: --beam-width and --beam-density" in " ".join(capsys.readouterr().out.split())
    run = subprocess.run(calibrate, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    saved = json.loads((tmp_path / "cal" / "ner" / "calibrator.json").read_text())
    assert saved["info"]["decoder"] == "scored_spancat_ents" and saved["info"]["entities"] > 0
    nlp = spacy.load(tmp_path / "cal")
    calibrator = nlp.get_pipe("ner").calibrator
    ents = [e for doc in nlp.pipe(TEXTS) for e in doc.ents]
    assert ents and all(e._.score == pytest.approx(float(calibrator.apply([e._.raw_score])[0])) for e in ents)
