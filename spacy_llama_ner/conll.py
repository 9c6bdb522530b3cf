"""Read CoNLL-style NER files into spaCy's DocBin format.

    python -m spacy_llama_ner.conll INPUT.txt OUTPUT.spacy [--limit N] [--n-sents N]

Accepts what real CoNLL files look like: IOB1 or IOB2 tags (also IOBES, and spaCy's
own BILUO, where L- ends an entity and U- is a one-word one), space- or tab-separated
columns, two or more columns with the word first and the tag last, with or without
`-DOCSTART-` lines, and blank or whitespace-only lines between sentences. A line
before a sentence's first word that starts with `#` and does not end in a tag is a
comment (CoNLL-U's `# sent_id = 1`, MultiCoNER's `# id ... domain=en`) and is
skipped; `#` as a word with its tag is a word. Entity types are whatever the file
uses. Each sentence becomes a Doc, or with --n-sents N (as `spacy convert -n`) up to
N consecutive sentences of the same document (never across a `-DOCSTART-` line)
become one Doc with its sentence starts set, so the model reads each word with its
neighbouring sentences. Files are UTF-8 (with or without a byte-order mark).
A malformed line, or text in another encoding, stops the conversion with the file,
the line number and why.
"""
import argparse
import codecs
import io
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab
from wasabi import msg

TAG = re.compile(r"^(?P<prefix>[BIESLU])-(?P<label>\S+)$")
# BILUO's L (last) and U (unit) are IOBES's E and S
PREFIX_AS_IOBES = {"L": "E", "U": "S"}


class ConllFormatError(ValueError):
    def __init__(self, path, line_no: int, reason: str):
        super().__init__(f"{path}:{line_no}: {reason}")
        self.path, self.line_no, self.reason = path, line_no, reason


Sentence = Tuple[List[str], List[Tuple[int, int, str]]]


def read_conll(path: Path) -> Iterator[Sentence]:
    """Yield (words, entity spans as (start, end, label) token offsets) per sentence."""
    for _, words, spans in read_conll_with_breaks(path):
        yield words, spans


def read_conll_with_breaks(path: Path) -> Iterator[Tuple[bool, List[str], List[Tuple[int, int, str]]]]:
    """Yield (starts a document, words, spans) per sentence: the first sentence and
    each one after a -DOCSTART- line start a document."""
    words: List[str] = []
    tags: List[str] = []
    new_document = True
    # universal newlines (\n, \r\n, \r), as open() reads text; str.splitlines would also
    # split at \x0b, \x1c or U+2028 inside a word
    with io.StringIO(read_utf8(path), newline=None) as f:
        for line_no, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            docstart = bool(line.strip()) and line.split(maxsplit=1)[0] == "-DOCSTART-"
            if not line.strip() or docstart:
                if words:
                    yield new_document, words, tags_to_spans(tags)
                    new_document = False
                new_document = new_document or docstart
                words, tags = [], []
                continue
            columns = [c for c in (line.split("\t") if "\t" in line else line.split(" ")) if c.strip()]
            if not words and line.startswith("#") and not is_tag(columns[-1].strip()):
                continue  # a comment line before the sentence
            if len(columns) < 2:
                raise ConllFormatError(path, line_no, f"expected a word and a tag, found {len(columns)} column: {line!r}")
            tag = columns[-1].strip()
            if not is_tag(tag):
                raise ConllFormatError(
                    path, line_no,
                    f"last column {tag!r} is not an NER tag (O, B-TYPE, I-TYPE, E-TYPE, S-TYPE, L-TYPE or U-TYPE)",
                )
            words.append(columns[0].strip())
            tags.append(tag)
    if words:
        yield new_document, words, tags_to_spans(tags)


def read_utf8(path: Path) -> str:
    """The file's text, without a byte-order mark; not UTF-8 is an error at its line."""
    data = Path(path).read_bytes()
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no = data[: err.start].count(b"\n") + 1
        raise ConllFormatError(
            path, line_no, f"not UTF-8 (byte 0x{data[err.start]:02x}); convert the file first, e.g. "
            f"iconv -f latin1 -t utf-8 {path} > {Path(path).stem}.utf8{Path(path).suffix}"
        ) from None


def is_tag(column: str) -> bool:
    return column == "O" or bool(TAG.match(column))


def tags_to_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    """Entity spans from IOB1, IOB2, IOBES or BILUO tags. An entity starts at B-X or
    S-X, or at I-X/E-X that does not continue an entity of type X (IOB1)."""
    spans: List[Tuple[int, int, str]] = []
    start: Optional[int] = None
    label: Optional[str] = None
    for i, tag in enumerate(tags + ["O"]):
        match = TAG.match(tag)
        prefix, tag_label = (match["prefix"], match["label"]) if match else ("O", None)
        prefix = PREFIX_AS_IOBES.get(prefix, prefix)
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


def group_sentences(path: Path, limit: Optional[int], n_sents: int) -> Iterator[List[Sentence]]:
    """The first `limit` sentences in groups of up to n_sents, a group never spanning
    two documents."""
    group: List[Sentence] = []
    for n, (new_document, words, spans) in enumerate(read_conll_with_breaks(path)):
        if limit is not None and n >= limit:
            break
        if group and (new_document or len(group) == n_sents):
            yield group
            group = []
        group.append((words, spans))
    if group:
        yield group


def conll_to_docbin(path: Path, limit: Optional[int] = None, vocab: Optional[Vocab] = None, n_sents: int = 1) -> DocBin:
    """Sentences (the first `limit`) to Docs of up to n_sents sentences each."""
    if n_sents < 1:
        raise ValueError(f"n_sents (sentences per Doc) must be at least 1, got {n_sents}")
    vocab = vocab or Vocab()
    docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE", "SENT_START"], store_user_data=False)
    for group in group_sentences(path, limit, n_sents):
        words = [word for sentence_words, _ in group for word in sentence_words]
        sent_starts, ents, offset = [], [], 0
        for sentence_words, spans in group:
            sent_starts += [True] + [False] * (len(sentence_words) - 1)
            ents += [(offset + s, offset + e, label) for s, e, label in spans]
            offset += len(sentence_words)
        doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False], sent_starts=sent_starts)
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
        docbin.add(doc)
    return docbin


def main(argv=None, prog: str = "python -m spacy llama-ner convert-conll"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N sentences")
    parser.add_argument("--n-sents", type=int, default=1,
                        help="sentences per Doc, within one document (default: 1, each sentence a Doc)")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        msg.fail(f"CoNLL file not found: {args.input.resolve()}", exits=1)
    if args.n_sents < 1:
        msg.fail(f"--n-sents: got {args.n_sents}; it must be 1 or more (sentences per Doc)", exits=1)
    try:
        docbin = conll_to_docbin(args.input, args.limit, n_sents=args.n_sents)
    except ConllFormatError as err:
        msg.fail(str(err), exits=1)
    docs = list(docbin.get_docs(Vocab()))
    if not docs:
        msg.fail(f"{args.input}: no sentences in it (one word and its tag per line, a blank line between sentences)",
                 exits=1)
    labels = sorted({ent.label_ for doc in docs for ent in doc.ents})
    if not labels:
        msg.warn(f"{args.input}: no entities in it, every tag is O")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(args.output)
    sentences = sum(1 for doc in docs for _ in doc.sents)
    entities = sum(len(d.ents) for d in docs)
    msg.good(
        f"{args.output}: {counted(sentences, 'sentence', 'sentences')} in {counted(len(docs), 'Doc', 'Docs')}, "
        f"{counted(entities, 'entity', 'entities')}, labels {labels}"
    )


def counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


if __name__ == "__main__":
    main()
