"""Read CoNLL-style NER files into spaCy's DocBin format.

    python -m spacy_llama_ner.conll INPUT.txt OUTPUT.spacy [--limit N]

Accepts what real CoNLL files look like: IOB1 or IOB2 (also IOBES) tags, space- or
tab-separated columns, two or more columns with the word first and the tag last,
with or without `-DOCSTART-` lines, and blank or whitespace-only lines between
sentences. Entity types are whatever the file uses. Each sentence becomes a Doc.
A malformed line stops the conversion with the file, the line number and why.
"""
import argparse
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab
from wasabi import msg

TAG = re.compile(r"^(?P<prefix>[BIES])-(?P<label>\S+)$")


class ConllFormatError(ValueError):
    def __init__(self, path, line_no: int, reason: str):
        super().__init__(f"{path}:{line_no}: {reason}")
        self.path, self.line_no, self.reason = path, line_no, reason


Sentence = Tuple[List[str], List[Tuple[int, int, str]]]


def read_conll(path: Path) -> Iterator[Sentence]:
    """Yield (words, entity spans as (start, end, label) token offsets) per sentence."""
    words: List[str] = []
    tags: List[str] = []
    first_line = 0
    with open(path, encoding="utf-8") as f:
        for line_no, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.split(maxsplit=1)[0] == "-DOCSTART-":
                if words:
                    yield words, tags_to_spans(tags, path, first_line)
                words, tags = [], []
                continue
            columns = [c for c in (line.split("\t") if "\t" in line else line.split(" ")) if c.strip()]
            if len(columns) < 2:
                raise ConllFormatError(path, line_no, f"expected a word and a tag, found {len(columns)} column: {line!r}")
            tag = columns[-1].strip()
            if tag != "O" and not TAG.match(tag):
                raise ConllFormatError(
                    path, line_no, f"last column {tag!r} is not an NER tag (O, B-TYPE, I-TYPE, E-TYPE or S-TYPE)"
                )
            if not words:
                first_line = line_no
            words.append(columns[0].strip())
            tags.append(tag)
    if words:
        yield words, tags_to_spans(tags, path, first_line)


def tags_to_spans(tags: List[str], path="<tags>", line_no: int = 0) -> List[Tuple[int, int, str]]:
    """Entity spans from IOB1, IOB2 or IOBES tags. An entity starts at B-X or S-X,
    or at I-X/E-X that does not continue an entity of type X (IOB1)."""
    spans: List[Tuple[int, int, str]] = []
    start: Optional[int] = None
    label: Optional[str] = None
    for i, tag in enumerate(tags + ["O"]):
        match = TAG.match(tag)
        prefix, tag_label = (match["prefix"], match["label"]) if match else ("O", None)
        continues = start is not None and prefix in "IE" and tag_label == label
        if start is not None and not continues:
            spans.append((start, i, label))
            start = label = None
        if prefix != "O" and not continues:
            start, label = i, tag_label
        if prefix in "ES" and start is not None:
            spans.append((start, i + 1, label))
            start = label = None
    return spans


def conll_to_docbin(path: Path, limit: Optional[int] = None, vocab: Optional[Vocab] = None) -> DocBin:
    vocab = vocab or Vocab()
    docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    for n, (words, spans) in enumerate(read_conll(path)):
        if limit is not None and n >= limit:
            break
        doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in spans]
        docbin.add(doc)
    return docbin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N sentences")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        msg.fail(f"CoNLL file not found: {args.input.resolve()}", exits=1)
    try:
        docbin = conll_to_docbin(args.input, args.limit)
    except ConllFormatError as err:
        msg.fail(str(err), exits=1)
    docs = list(docbin.get_docs(Vocab()))
    labels = sorted({ent.label_ for doc in docs for ent in doc.ents})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(args.output)
    msg.good(
        f"{args.output}: {len(docs)} sentences, {sum(len(d.ents) for d in docs)} entities, labels {labels}"
    )


if __name__ == "__main__":
    main()
