"""Entity confidence, stored where spaCy users look for it.

Convention (spancat's): `doc.spans[CANDIDATES_KEY]` holds candidate entities, and
`doc.spans[CANDIDATES_KEY].attrs["scores"]` their probabilities, in the same order.
Both survive DocBin and Doc.to_bytes. A pipeline without scores has no such group.

The `ner_confidence` component (spacy_llama_ner/confidence.py) fills the group after
spaCy's `beam_ner`; `Span._.score` reads it back for any span (None when there is no
score), so after `spacy.load`:

    for ent in doc.ents:
        print(ent.text, ent.label_, ent._.score)
"""
from typing import Dict, Optional, Tuple

from spacy.tokens import Span

CANDIDATES_KEY = "ner_candidates"
SCORE_EXTENSION = "score"


class EntityScoresUnavailable(ValueError):
    """The pipeline gives no entity probabilities (e.g. a greedy `ner`), and says how to get them."""


HOW_TO_GET_SCORES = (
    "Entity probabilities come from spaCy's beam search: train with configs/ner_beam.cfg "
    "(factory 'beam_ner' followed by 'ner_confidence'), or add the 'ner_confidence' "
    "component after an existing 'beam_ner'. See docs/confidence.md."
)


def entity_scores(doc) -> Dict[Tuple[int, int, str], float]:
    """{(start_char, end_char, label): probability} of the doc's scored candidates;
    empty when the pipeline gives no scores."""
    group = doc.spans.get(CANDIDATES_KEY)
    if group is None:
        return {}
    scores = group.attrs.get("scores", [])
    return {(span.start_char, span.end_char, span.label_): float(p) for span, p in zip(group, scores)}


def span_score(span) -> Optional[float]:
    """The probability that `span` (its exact boundaries and label) is an entity, or None
    when the doc has no score for it (no scores at all, or a candidate never seen)."""
    group = span.doc.spans.get(CANDIDATES_KEY)
    if group is None:
        return None
    scores = group.attrs.get("scores", [])
    for candidate, p in zip(group, scores):
        if candidate.start == span.start and candidate.end == span.end and candidate.label == span.label:
            return float(p)
    return None


def has_scores(nlp) -> bool:
    """Whether the pipeline writes entity probabilities (it has an enabled ner_confidence)."""
    return any(getattr(pipe, "writes_entity_scores", False) for _, pipe in nlp.pipeline)


def require_scores(nlp) -> None:
    """Raise EntityScoresUnavailable, saying how to get scores, when `nlp` gives none."""
    if has_scores(nlp):
        return
    ners = [name for name, pipe in nlp.pipeline if pipe.__class__.__name__ == "EntityRecognizer"]
    if ners:
        name = ners[0]
        width = nlp.get_pipe(name).cfg.get("beam_width", 1)
        kind = "greedy (beam_width = 1)" if width == 1 else f"a beam of width {width} with no 'ner_confidence' after it"
        raise EntityScoresUnavailable(f"Pipeline component '{name}' is {kind}: it gives no entity probabilities. {HOW_TO_GET_SCORES}")
    raise EntityScoresUnavailable(f"The pipeline has no entity recognizer. {HOW_TO_GET_SCORES}")


if not Span.has_extension(SCORE_EXTENSION):
    Span.set_extension(SCORE_EXTENSION, getter=span_score)
