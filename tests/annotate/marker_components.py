"""Components that tests add to a real pipeline (imported here, or given to the command
as --code): they make visible what the command must get right.

- test_batch_marker: a doc's one entity is labelled with a digest of the texts of the
  nlp.pipe batch it ran in, as a model whose features carry float noise from the other
  documents in its batch would (padding, matrix blocking), only always;
- test_entity_scores: puts the entities into doc.spans["ner_candidates"] with
  attrs["scores"] (the convention of spacy_llama_ner.scores), plus one candidate that is
  not an entity;
- test_crash: ends the process at once (as a kill does) on the text named by the
  ANNOTATE_TEST_CRASH_AT environment variable.
"""
import os
import zlib

from spacy.language import Language
from spacy.tokens import Span, SpanGroup
from spacy.util import minibatch


def batch_label(texts) -> str:
    return f"B{zlib.crc32(chr(1).join(texts).encode('utf-8')):08x}"


class BatchMarker:
    def __init__(self, nlp, name):
        self.name = name

    def mark(self, docs):
        label = batch_label([d.text for d in docs])
        for doc in docs:
            doc.ents = [Span(doc, 0, 1, label=label)] if len(doc) else []
        return docs

    def __call__(self, doc):
        return self.mark([doc])[0]

    def pipe(self, stream, batch_size=128):
        for batch in minibatch(stream, batch_size):
            yield from self.mark(list(batch))


@Language.factory("test_batch_marker")
def make_batch_marker(nlp, name):
    return BatchMarker(nlp, name)


def score_of(span) -> float:
    return round(0.5 + 0.01 * len(span.text), 4)


@Language.component("test_entity_scores")
def entity_scores_component(doc):
    spans = list(doc.ents)
    if len(doc) >= 2:
        spans.append(Span(doc, 0, 2, label="NOT_AN_ENTITY"))
    group = SpanGroup(doc, name="ner_candidates", spans=spans)
    group.attrs["scores"] = [score_of(s) for s in spans]
    doc.spans["ner_candidates"] = group
    return doc


@Language.component("test_crash")
def crash_component(doc):
    if doc.text == os.environ.get("ANNOTATE_TEST_CRASH_AT"):
        os._exit(9)
    return doc
