"""Training callbacks (entry point `spacy_callbacks`, see setup.cfg)."""
from pathlib import Path
from typing import Callable, Optional

from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training.corpus import walk_corpus
from spacy.util import registry
from wasabi import msg


@registry.callbacks("spacy_llama_ner.check_ner_labels.v1")
def create_check_ner_labels(corpus_path: Optional[str], component: str = "ner") -> Callable[[Language], Language]:
    """[initialize.after_init]: stop if the training corpus has entity labels the
    initialized NER does not know (e.g. labels fixed in [initialize.components]).
    spaCy would otherwise train on such entities as if they were not there.
    With no corpus path (paths.train = null: a pipeline built in Python and
    initialized from examples) there is no file to check, and it says so."""

    def check_ner_labels(nlp: Language) -> Language:
        if corpus_path is None:
            msg.info("check_ner_labels: no training corpus path (paths.train is null), labels not checked")
            return nlp
        known = set(nlp.get_pipe(component).labels)
        found = {}
        for path in walk_corpus(corpus_path, ".spacy"):  # a .spacy file or a directory of them, as spaCy reads it
            for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
                for ent in doc.ents:
                    found.setdefault(ent.label_, ent.text)
        unknown = sorted(set(found) - known)
        if unknown:
            examples = ", ".join(f"{label} (e.g. {found[label]!r})" for label in unknown)
            raise ValueError(
                f"{Path(corpus_path)} has entity labels that component '{component}' does not "
                f"know: {examples}. Known labels: {sorted(known)}. Add them to the labels "
                "in [initialize.components] or drop them from the data."
            )
        return nlp

    return check_ner_labels
