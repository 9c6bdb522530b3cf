"""Entity probabilities: the scored_beam_ner component (component.py) or spancat with
scored_spancat_ents (spancat_ents.py), where the scores
live on a Doc (spans.py), their calibrator (calibrator.py), the measures of how good
they are (measures.py) and the `calibrate` command (calibrate.py)."""
from .calibrator import Calibrator, CalibratorFileError
from .component import ScoredEntityRecognizer, make_scored_beam_ner
from .spancat_ents import ScoredSpancatEnts, make_scored_spancat_ents
from .spans import CANDIDATES_KEY, EntityScoresUnavailable, ScoresConfigError, entity_scores, has_scores, require_scores

__all__ = [
    "Calibrator", "CalibratorFileError", "ScoredEntityRecognizer", "make_scored_beam_ner", "ScoredSpancatEnts",
    "make_scored_spancat_ents", "CANDIDATES_KEY",
    "EntityScoresUnavailable", "ScoresConfigError", "entity_scores", "has_scores", "require_scores",
]
