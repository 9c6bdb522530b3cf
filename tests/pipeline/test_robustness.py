"""Messy text never crashes the pipeline, never yields invalid entities, and every
token with text is fed by a word piece — at inference and in training, in both
attention modes."""
import warnings

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.training import Example
from spacy.util import fix_random_seed

from conftest import make_nlp, token_vectors

FIXED = {
    "empty": "",
    "whitespace": " \t\n  \r\n ",
    "one char": "A",
    "emoji": "Peter 😀 went to 👨‍👩‍👧 London 🇬🇧 .",
    "cjk": "東京は日本の首都です。Tokyo is in Japan.",
    "arabic": "ذهب محمد إلى القاهرة يوم الاثنين",
    "hebrew": "דוד גר בירושלים",
    "combining": "Zoe\u0308 and Ame\u0301lie met in Sa\u0303o Paulo",
    "zwj": "a\u200db\u200cc \u200d \ufeffword",
    "control": "bad\x00byte\x07s \x1b[31m red \x7f",
    "crlf and tabs": "Acme\thires\r\nSwiss chef\r\n\r\nin Paris",
    "nbsp": "Peter\u00a0Smith\u202fLtd\u2009Corp",
    "merged across tokens": "U.S.-based e-mail can't won't I'm 3.5% (Reuters)--ok",
    "long word": "x" * 3000,
}


SENTENCE = "Peter Smith flew to London on Monday . "


@pytest.fixture(scope="module", params=["causal", "bidirectional"])
def trained(request, tiny_llama):
    """A tiny pipeline trained a few steps so that its NER predicts entities; seeded, so
    that what it predicts does not hang on the tests that ran before it."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_llama, attention=request.param)
    train = [
        (SENTENCE.strip(), [(0, 11, "PER"), (20, 26, "LOC")]),
        ("Maria went to Paris", [(0, 5, "PER"), (14, 19, "LOC")]),
        # the sentence run on, as a window of the million-character document shows it
        (SENTENCE * 8, [(i * len(SENTENCE) + a, i * len(SENTENCE) + b, label)
                        for i in range(8) for a, b, label in ((0, 11, "PER"), (20, 26, "LOC"))]),
    ]
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in train]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(20):
        nlp.update(examples, sgd=optimizer)
    return nlp


def check_doc(doc):
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)
        assert ent.label_
    data = doc._.trf_data
    if len(doc) and data.align.lengths.size:
        for token, n in zip(doc, data.align.lengths):
            assert n > 0 or token.is_space, f"token {token.text!r} got no word piece"
        assert numpy.isfinite(data.model_output.last_hidden_state).all()


@pytest.mark.parametrize("name", list(FIXED))
def test_fixed_cases(trained, name):
    text = FIXED[name]
    check_doc(trained(text))
    # and inside a batch with ordinary text
    for doc in trained.pipe([text, "Peter Smith flew to London .", text], batch_size=3):
        check_doc(doc)


def test_fixed_cases_in_training(trained):
    optimizer = trained.resume_training()
    examples = [Example.from_dict(trained.make_doc(t), {"entities": []}) for t in FIXED.values()]
    losses = trained.update(examples, sgd=optimizer)
    assert all(numpy.isfinite(v) for v in losses.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_random_unicode(trained, text):
    check_doc(trained(text))


def test_million_character_document_is_windowed(trained):
    """A 1,000,000-character doc runs as strided windows in bounded groups."""
    text = (SENTENCE * (1_000_000 // len(SENTENCE) + 1))[:1_000_000]
    trained.max_length = 2_000_000
    doc = trained(text)
    check_doc(doc)
    # the NER sees every window, not only the first: more than half of the sentences' two entities
    # (42,737 of 51,282 or more, after test_fixed_cases_in_training has taught the NER some O;
    # with the span getter cut to the first 128-token window, 181-423)
    assert len(doc.ents) > text.count(SENTENCE)


def test_an_empty_doc_in_a_batch_leaves_the_others_as_they_are_alone(tiny_llama):
    """doc_spans.v1 gives an empty Doc a span without tokens; it must not shift the
    rows of the docs after it (it did: an IndexError, or another doc's features)."""
    nlp = make_nlp(tiny_llama, get_spans={"@span_getters": "spacy-transformers.doc_spans.v1"})
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc("Peter flew"), {"entities": [(0, 5, "PER")]})])
    texts = ["Peter Smith flew", "", "to London today .", ""]
    together = token_vectors(nlp, texts)
    assert together[1] is None and together[3] is None
    for i in (0, 2):
        numpy.testing.assert_allclose(together[i], token_vectors(nlp, [texts[i]])[0], rtol=1e-4, atol=1e-5)
    docs = list(nlp.pipe(texts))
    assert [len(doc) for doc in docs] == [3, 0, 4, 0]
    for doc in docs:
        check_doc(doc)


def test_overlong_span_warns_and_still_covers_tokens(tiny_llama):
    nlp = make_nlp(tiny_llama, with_ner=False, max_length=16,
                   get_spans={"@span_getters": "spacy-transformers.doc_spans.v1"})
    nlp.initialize()
    with pytest.warns(UserWarning, match="max_length=16"):
        doc = nlp("the bank in London said the minister won the cup on Monday in Paris and Berlin")
    check_doc(doc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nlp("short text")
