"""Alignment is exact: every token with text gets a piece, no piece feeds a token
whose characters it does not cover."""
import numpy
import pytest
import spacy

from spacy.attrs import IS_SPACE

from spacy_llama_ner.backbone.alignment import align_spans, tokenize_spans
from spacy_llama_ner.conll import conll_to_docbin
from conftest import train_tokenizer

TEXTS = [
    "This is a test.",
    "Peter Smith,  who works for the European Union in Brussels, said: \"no!\"",
    "U.S. shares rose 3.5% on Monday\tafter\nthe news (Reuters) -- ok?",
    "naïve café owners in Zürich don't pay 100€ … 😀 emoji",
]


def uncovered_tokens(docs, align):
    """(doc index, token index) of every non-space token that got no piece."""
    missing, start = [], 0
    for d, doc in enumerate(docs):
        is_space = doc.to_array([IS_SPACE]).reshape(-1)
        lengths = align.lengths[start : start + len(doc)]
        missing.extend((d, int(i)) for i in numpy.flatnonzero((lengths == 0) & (is_space == 0)))
        start += len(doc)
    return missing


def check_alignment(tokenizer, docs, max_length=512):
    """Return the coverage; assert that no piece feeds a token it does not overlap."""
    spans = [doc[:] for doc in docs]
    batch, offsets = tokenize_spans(tokenizer, spans, max_length=max_length, pad_id=0)
    width = batch.input_ids.shape[1]
    align = align_spans(spans, offsets, width)
    assert align.lengths.shape[0] == sum(len(d) for d in docs)
    row = 0
    for d, doc in enumerate(docs):
        for token in doc:
            n = align.lengths[row]
            pieces = align.dataXd[align.lengths[:row].sum() : align.lengths[:row].sum() + n]
            for piece in pieces:
                span_i, j = divmod(int(piece), width)
                assert span_i == d
                start, end = offsets[d][j]
                text = doc.text[start:end]
                # the piece's non-space characters overlap the token's characters
                lead = len(text) - len(text.lstrip())
                assert start + lead < token.idx + len(token) and end > token.idx, (token.text, text)
            if n:
                assert not token.is_space
            row += 1
    missing = uncovered_tokens(docs, align)
    return 1 - len(missing) / sum(1 for doc in docs for t in doc if not t.is_space)


@pytest.mark.parametrize("style", ["bytelevel", "metaspace"])
def test_every_token_covered_and_no_piece_leaks(style):
    tokenizer = train_tokenizer(style)
    nlp = spacy.blank("en")
    assert check_alignment(tokenizer, [nlp(t) for t in TEXTS]) == 1.0


def test_leading_space_piece_does_not_feed_previous_token():
    tokenizer = train_tokenizer("bytelevel")
    doc = spacy.blank("en")("the government said")
    batch, offsets = tokenize_spans(tokenizer, [doc[:]], max_length=64, pad_id=0)
    assert any(tokenizer.convert_ids_to_tokens(int(i)).startswith("Ġ") for i in batch.input_ids[0])
    align = align_spans([doc[:]], offsets, batch.input_ids.shape[1])
    per_token = numpy.split(align.dataXd, numpy.cumsum(align.lengths)[:-1])
    # no piece is shared between neighbouring words
    assert not set(per_token[0]) & set(per_token[1])
    assert not set(per_token[1]) & set(per_token[2])


def test_overlapping_strided_spans_align_to_both_windows():
    tokenizer = train_tokenizer("bytelevel")
    doc = spacy.blank("en")("the bank in London said the minister won the cup")
    spans = [doc[0:6], doc[4:10]]
    batch, offsets = tokenize_spans(tokenizer, spans, max_length=64, pad_id=0)
    width = batch.input_ids.shape[1]
    align = align_spans(spans, offsets, width)
    per_token = numpy.split(align.dataXd, numpy.cumsum(align.lengths)[:-1])
    for i, pieces in enumerate(per_token):
        windows = {int(p) // width for p in pieces}
        assert windows == ({0} if i < 4 else {0, 1} if i < 6 else {1})


@pytest.mark.integration
def test_smollm2_coverage_on_conll_dev(smollm2_dir, conll_dir):
    """100% of CoNLL-2003 dev tokens get a piece from the real SmolLM2 tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    nlp = spacy.blank("en")
    docs = list(conll_to_docbin(conll_dir / "dev.txt").get_docs(nlp.vocab))
    assert len(docs) == 3250
    coverage = []
    for start in range(0, len(docs), 256):
        chunk = docs[start : start + 256]
        coverage.append((check_alignment(tokenizer, chunk), sum(len(d) for d in chunk)))
    total = sum(c * n for c, n in coverage) / sum(n for _, n in coverage)
    print(f"SmolLM2 alignment coverage on CoNLL-2003 dev: {total:.4%}")
    assert total == 1.0


def test_token_no_piece_overlaps_gets_the_nearest_piece():
    """Zero-width offsets (seen from some tokenizer versions) must not leave a token
    with a zero vector: it takes the nearest piece before it."""
    doc = spacy.blank("en")("a b c")
    offsets = [numpy.array([[0, 0], [0, 1], [2, 2], [4, 5]])]  # "b" has only a zero-width piece
    align = align_spans([doc[:]], offsets, width=4)
    assert align.lengths.tolist() == [1, 1, 1]
    assert align.dataXd.tolist() == [1, 1, 3]


def test_whitespace_tokens_get_no_piece():
    tokenizer = train_tokenizer("bytelevel")
    doc = spacy.blank("en")("the  bank\n\nsaid")
    assert [t.is_space for t in doc] == [False, True, False, True, False]
    batch, offsets = tokenize_spans(tokenizer, [doc[:]], max_length=64, pad_id=0)
    align = align_spans([doc[:]], offsets, batch.input_ids.shape[1])
    assert [n > 0 for n in align.lengths] == [True, False, True, False, True]
