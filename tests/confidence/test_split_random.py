"""experiments/confidence/split_random.py: the social-media check's train/dev/test split of
a one-file data set is a partition of its docs, the same for the same seed, entities kept."""
import pytest
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from conftest import load_script

SCRIPT = "experiments/confidence/split_random.py"


def write_corpus(path, n):
    vocab = Vocab()
    docs = []
    for i in range(n):
        doc = Doc(vocab, words=[f"w{i}", "in", "Paris"])
        doc.ents = [Span(doc, 2, 3, label="LOC")]
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)


def read(path):
    return [(d[0].text, [(e.start, e.end, e.label_) for e in d.ents]) for d in DocBin().from_disk(path).get_docs(Vocab())]


def test_split_is_a_seeded_partition(tmp_path):
    split = load_script(SCRIPT).main
    write_corpus(tmp_path / "all.spacy", 20)
    split([str(tmp_path / "all.spacy"), str(tmp_path / "a"), "--seed", "3"])
    parts = {name: read(tmp_path / "a" / f"{name}.spacy") for name in ("train", "dev", "test")}
    assert [len(parts[n]) for n in ("train", "dev", "test")] == [12, 4, 4]
    firsts = [doc[0] for part in parts.values() for doc in part]
    assert sorted(firsts) == sorted(f"w{i}" for i in range(20))  # every doc once
    assert all(doc[1] == [(2, 3, "LOC")] for part in parts.values() for doc in part)
    assert firsts[:12] != [f"w{i}" for i in range(12)]  # shuffled, not the file's order
    split([str(tmp_path / "all.spacy"), str(tmp_path / "b"), "--seed", "3"])
    assert all(read(tmp_path / "b" / f"{n}.spacy") == parts[n] for n in parts)


@pytest.mark.parametrize("args, message", [(["--dev", "0.6", "--test", "0.5"], "together below 1"), ([], "too few")])
def test_bad_split_is_refused(tmp_path, capsys, args, message):
    write_corpus(tmp_path / "all.spacy", 2 if not args else 20)
    with pytest.raises(SystemExit):
        load_script(SCRIPT).main([str(tmp_path / "all.spacy"), str(tmp_path / "out"), *args])
    assert message in capsys.readouterr().out
    assert not (tmp_path / "out" / "train.spacy").exists()
