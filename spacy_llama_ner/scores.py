"""Entity confidence, stored where spaCy users look for it.

Convention (spancat's): `doc.spans[CANDIDATES_KEY]` holds candidate entities, and
`doc.spans[CANDIDATES_KEY].attrs["scores"]` their probabilities, in the same order.
Both survive DocBin and Doc.to_bytes. A pipeline without scores has no such group.
"""
from typing import Dict, Tuple

CANDIDATES_KEY = "ner_candidates"


def entity_scores(doc) -> Dict[Tuple[int, int, str], float]:
    """{(start_char, end_char, label): probability} of the doc's scored candidates;
    empty when the pipeline gives no scores."""
    group = doc.spans.get(CANDIDATES_KEY)
    if group is None:
        return {}
    scores = group.attrs.get("scores", [])
    return {(span.start_char, span.end_char, span.label_): float(p) for span, p in zip(group, scores)}
