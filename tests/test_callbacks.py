"""Training data with labels the NER does not know stops with a clear message."""
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_llama_ner.callbacks import create_check_ner_labels


def test_unknown_training_labels_are_named(tmp_path):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    ner.add_label("PER")
    nlp.initialize()
    doc = Doc(nlp.vocab, words=["Peter", "went", "to", "Aspirin"])
    doc.ents = [Span(doc, 0, 1, "PER"), Span(doc, 3, 4, "DRUG")]
    path = tmp_path / "train.spacy"
    DocBin(docs=[doc]).to_disk(path)
    with pytest.raises(ValueError) as info:
        create_check_ner_labels(str(path))(nlp)
    message = str(info.value)
    assert str(path) in message and "DRUG (e.g. 'Aspirin')" in message and "Known labels: ['PER']" in message
    ner.add_label("DRUG")
    assert create_check_ner_labels(str(path))(nlp) is nlp

