"""The CoNLL reader takes the format variants real files come in, and names the
file, line and reason for a malformed line."""
import pytest
from spacy.tokens import Doc, DocBin, Span
from spacy.training import offsets_to_biluo_tags
from spacy.vocab import Vocab

from spacy_llama_ner.conll import ConllFormatError, conll_to_docbin, main, read_conll, tags_to_spans

IOB1 = """-DOCSTART- -X- O O

Acme NNP I-NP I-ORG
hires VBZ I-VP O
Swiss JJ I-NP I-MISC
chef NN I-NP O
. . O O

Anna NNP I-NP I-PER
Berg NNP I-NP I-PER
Lind NNP I-NP B-PER
"""

EXPECTED = [
    (["Acme", "hires", "Swiss", "chef", "."], [(0, 1, "ORG"), (2, 3, "MISC")]),
    (["Anna", "Berg", "Lind"], [(0, 2, "PER"), (2, 3, "PER")]),
]


def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_iob1_with_docstart(tmp_path):
    assert list(read_conll(write(tmp_path, IOB1))) == EXPECTED


def test_iob2_tab_separated_two_columns_no_docstart_whitespace_separators(tmp_path):
    text = "Acme\tB-ORG\nhires\tO\nSwiss\tB-MISC\nchef\tO\n.\tO\n   \t \nAnna\tB-PER\nBerg\tI-PER\nLind\tB-PER\n\n\n"
    assert list(read_conll(write(tmp_path, text))) == EXPECTED


def test_crlf_and_iobes_and_new_entity_types(tmp_path):
    text = "Aspirin S-DRUG\r\ncures O\r\nbad B-DISEASE\r\nheadaches E-DISEASE\r\n\r\n"
    assert list(read_conll(write(tmp_path, text))) == [
        (["Aspirin", "cures", "bad", "headaches"], [(0, 1, "DRUG"), (2, 4, "DISEASE")])
    ]


def test_biluo_tags_as_spacy_writes_them(tmp_path):
    # spaCy's own scheme: the tags come from spaCy, and the spans read back are spaCy's
    words = ["Acme", "Corp", "hires", "Anna", "in", "New", "York", "City", "."]
    doc = Doc(Vocab(), words=words)
    doc.ents = [Span(doc, 0, 2, "ORG"), Span(doc, 3, 4, "PER"), Span(doc, 5, 8, "LOC")]
    tags = offsets_to_biluo_tags(doc, [(e.start_char, e.end_char, e.label_) for e in doc.ents])
    assert {t[0] for t in tags} == set("BLUO") | {"I"}
    text = "".join(f"{w} {t}\n" for w, t in zip(words, tags))
    assert list(read_conll(write(tmp_path, text))) == [
        (words, [(e.start, e.end, e.label_) for e in doc.ents])
    ]


def test_byte_order_mark_is_not_a_word(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff-DOCSTART- -X- O O\n\nAcme B-ORG\nhires O\n".encode("utf-8"))
    assert list(read_conll(path)) == [(["Acme", "hires"], [(0, 1, "ORG")])]


def test_text_not_in_utf8_names_its_line_and_the_fix(tmp_path):
    path = tmp_path / "esp.train"
    for bom in (b"", "\ufeff".encode("utf-8")):
        path.write_bytes(bom + "Madrid B-LOC\n\nEspaña B-LOC\n".encode("latin-1"))
        with pytest.raises(ConllFormatError) as info:
            list(read_conll(path))
        assert str(info.value).startswith(f"{path}:3: not UTF-8 (byte 0xf1)") and "iconv -f latin1" in str(info.value)


def test_comment_lines_before_a_sentence_are_skipped_and_hash_words_kept(tmp_path):
    # MultiCoNER-style: a comment, then word _ _ tag; CoNLL-U-style sent_id comments
    text = ("# id 8f2c domain=en\n# sent_id = 1\nAcme _ _ B-ORG\n# _ _ O\nhires _ _ O\n\n"
            "# O\nAnna _ _ B-PER\n")
    assert list(read_conll(write(tmp_path, text))) == [
        (["Acme", "#", "hires"], [(0, 1, "ORG")]),
        (["#", "Anna"], [(1, 2, "PER")]),
    ]


def test_type_change_inside_i_tags_starts_a_new_entity():
    assert tags_to_spans(["I-ORG", "I-LOC", "O", "B-PER", "I-PER"]) == [(0, 1, "ORG"), (1, 2, "LOC"), (3, 5, "PER")]


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("Acme B-ORG\nhires\n", 2, "expected a word and a tag, found 1 column"),
        ("Acme B-ORG\nhires VBZ X-ORG\n", 2,
         "last column 'X-ORG' is not an NER tag (O, B-TYPE, I-TYPE, E-TYPE, S-TYPE, L-TYPE or U-TYPE)"),
        ("Acme B-ORG\n\n\nhires VBZ B_ORG\n", 4, "last column 'B_ORG' is not an NER tag"),
        # inside a sentence a line starting with # is a word and needs a tag
        ("Acme B-ORG\n# sent_id = 2\n", 2, "last column '2' is not an NER tag"),
    ],
)
def test_malformed_line_names_file_line_and_reason(tmp_path, text, line, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConllFormatError) as info:
        list(read_conll(path))
    assert str(info.value).startswith(f"{path}:{line}: ") and reason in str(info.value)


def test_cli_writes_docbin_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "out.spacy"
    main([str(write(tmp_path, IOB1)), str(out), "--limit", "1"])
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in docs] == [EXPECTED[0][1]]
    with pytest.raises(SystemExit):
        main([str(write(tmp_path, "Acme\n", "bad.txt")), str(tmp_path / "bad.spacy")])
    assert "bad.txt:1: expected a word and a tag" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.txt"), str(out)])
    assert "CoNLL file not found" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- -X- O O\n\n", "# sent_id = 1\n\n"])
def test_cli_stops_on_a_file_without_sentences(tmp_path, capsys, text):
    out = tmp_path / "out.spacy"
    with pytest.raises(SystemExit):
        main([str(write(tmp_path, text, "empty.txt")), str(out)])
    assert "empty.txt: no sentences in it" in " ".join(capsys.readouterr().out.split())
    assert not out.exists()


def test_cli_warns_about_a_file_without_entities(tmp_path, capsys):
    out = tmp_path / "out.spacy"
    main([str(write(tmp_path, "Acme O\nhires O\n\n", "plain.txt")), str(out)])
    assert "plain.txt: no entities in it" in " ".join(capsys.readouterr().out.split())
    assert len(DocBin().from_disk(out)) == 1


def test_docbin_round_trip_keeps_entities(tmp_path):
    docbin = conll_to_docbin(write(tmp_path, IOB1))
    docs = list(docbin.get_docs(Vocab()))
    assert [d.text for d in docs] == ["Acme hires Swiss chef .", "Anna Berg Lind"]
    assert [e.text for e in docs[1].ents] == ["Anna Berg", "Lind"]


THREE_DOCUMENTS = IOB1 + """
-DOCSTART- -X- O O

Berg O O B-PER
left O O O

Lind O O B-PER
. O O O

Acme O O B-ORG
"""


def test_n_sents_groups_sentences_within_documents_only(tmp_path):
    path = write(tmp_path, THREE_DOCUMENTS)
    docs = list(conll_to_docbin(path, n_sents=2).get_docs(Vocab()))
    # the first document's two sentences, then the second's three in 2 + 1
    assert [d.text for d in docs] == ["Acme hires Swiss chef . Anna Berg Lind", "Berg left Lind .", "Acme"]
    assert [[s.text for s in d.sents] for d in docs[:2]] == [["Acme hires Swiss chef .", "Anna Berg Lind"], ["Berg left", "Lind ."]]
    assert [(e.text, e.start, e.label_) for e in docs[0].ents] == [
        ("Acme", 0, "ORG"), ("Swiss", 2, "MISC"), ("Anna Berg", 5, "PER"), ("Lind", 7, "PER")]
    assert [(e.text, e.start) for e in docs[1].ents] == [("Berg", 0), ("Lind", 2)]
    # one sentence per Doc (the default), and --limit counts sentences
    assert len(list(conll_to_docbin(path).get_docs(Vocab()))) == 5
    assert [d.text for d in conll_to_docbin(path, limit=3, n_sents=10).get_docs(Vocab())] == [
        "Acme hires Swiss chef . Anna Berg Lind", "Berg left"]
    # without -DOCSTART- lines, consecutive sentences are grouped
    plain = write(tmp_path, THREE_DOCUMENTS.replace("-DOCSTART- -X- O O\n", ""), "plain.txt")
    assert [len(list(d.sents)) for d in conll_to_docbin(plain, n_sents=4).get_docs(Vocab())] == [4, 1]


def test_cli_n_sents_reports_docs_and_rejects_zero(tmp_path, capsys):
    out = tmp_path / "out.spacy"
    main([str(write(tmp_path, THREE_DOCUMENTS)), str(out), "--n-sents", "10"])
    assert "5 sentences in 2 Docs, 7 entities" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main([str(write(tmp_path, THREE_DOCUMENTS)), str(out), "--n-sents", "0"])
    assert "--n-sents: got 0; it must be 1 or more" in " ".join(capsys.readouterr().out.split())


def test_cli_summary_counts_one_in_the_singular(tmp_path, capsys):
    main([str(write(tmp_path, "Anna B-PER\nsings O\n", "one.txt")), str(tmp_path / "one.spacy")])
    assert "1 sentence in 1 Doc, 1 entity, labels ['PER']" in " ".join(capsys.readouterr().out.split())
