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


def test_a_corpus_directory_is_checked_file_by_file(tmp_path):
    """spaCy's corpus reader takes a directory of .spacy files; so does the check."""
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("PER")
    nlp.initialize()
    for i, (word, label) in enumerate([("Peter", "PER"), ("Aspirin", "DRUG")]):
        doc = Doc(nlp.vocab, words=[word, "works"])
        doc.ents = [Span(doc, 0, 1, label)]
        (tmp_path / "train" / f"part{i}").mkdir(parents=True)
        DocBin(docs=[doc]).to_disk(tmp_path / "train" / f"part{i}" / "docs.spacy")
    with pytest.raises(ValueError, match=r"DRUG \(e.g. 'Aspirin'\)"):
        create_check_ner_labels(str(tmp_path / "train"))(nlp)



def test_a_config_with_no_training_path_initializes_from_examples(tiny_llama):
    """A custom training loop: our config with paths.train = null, initialized from
    examples given in Python (the label check has no file and steps aside)."""
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config

    from conftest import ROOT

    config = load_config(
        ROOT / "configs" / "ner_bidirectional.cfg",
        overrides={"paths.train": None, "paths.dev": None, "paths.model": str(tiny_llama)},
    )
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    doc = nlp.make_doc("Peter Smith flew to London")
    examples = [Example.from_dict(doc, {"entities": [(0, 11, "PER"), (20, 26, "LOC")]})]
    nlp.initialize(lambda: examples)
    assert sorted(nlp.get_pipe("ner").labels) == ["LOC", "PER"]
    losses = nlp.update(examples)
    assert losses["ner"] > 0
