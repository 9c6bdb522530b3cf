"""Split a CoNLL dev file by documents into two .spacy files (one sentence per Doc):
the first half of its documents for model selection during training, the second half
for fitting the entity score calibrator, so neither is chosen on the data it is judged by.

    python experiments/confidence/split_dev.py DEV.txt SELECT.spacy CALIBRATE.spacy
"""
import argparse
from pathlib import Path

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab
from wasabi import msg

from spacy_llama_ner.conll import read_conll_with_breaks


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dev", type=Path)
    ap.add_argument("select", type=Path)
    ap.add_argument("calibrate", type=Path)
    args = ap.parse_args(argv)
    documents = []
    for new_document, words, spans in read_conll_with_breaks(args.dev):
        if new_document or not documents:
            documents.append([])
        documents[-1].append((words, spans))
    if len(documents) < 2:
        msg.fail(f"{args.dev}: {len(documents)} document; splitting by documents needs at least 2", exits=1)
    half = len(documents) // 2
    vocab = Vocab()
    for part, out in ((documents[:half], args.select), (documents[half:], args.calibrate)):
        docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
        n_sents = n_ents = 0
        for document in part:
            for words, spans in document:
                doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
                doc.ents = [Span(doc, s, e, label=label) for s, e, label in spans]
                docbin.add(doc)
                n_sents += 1
                n_ents += len(spans)
        out.parent.mkdir(parents=True, exist_ok=True)
        docbin.to_disk(out)
        msg.good(f"{out}: {len(part)} documents, {n_sents} sentences, {n_ents} entities")


if __name__ == "__main__":
    main()
