"""Split a .spacy corpus at random (a fixed seed) into train, dev and test .spacy files,
for a data set that comes as one file (the social-media check in social.sh).

    python experiments/confidence/split_random.py ALL.spacy OUT_DIR [--dev 0.2] [--test 0.2] [--seed 0]
"""
import argparse
import random
from pathlib import Path

from spacy.tokens import DocBin
from spacy.vocab import Vocab
from wasabi import msg


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--dev", type=float, default=0.2, help="share of the docs for dev")
    ap.add_argument("--test", type=float, default=0.2, help="share of the docs for test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not (0 < args.dev < 1 and 0 < args.test < 1 and args.dev + args.test < 1):
        msg.fail(f"--dev {args.dev} and --test {args.test}: each above 0, together below 1", exits=1)
    docs = list(DocBin().from_disk(args.corpus).get_docs(Vocab()))
    random.Random(args.seed).shuffle(docs)
    n_dev, n_test = round(len(docs) * args.dev), round(len(docs) * args.test)
    if min(n_dev, n_test, len(docs) - n_dev - n_test) < 1:
        msg.fail(f"{args.corpus}: {len(docs)} docs are too few to split", exits=1)
    parts = {"dev": docs[:n_dev], "test": docs[n_dev : n_dev + n_test], "train": docs[n_dev + n_test :]}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        DocBin(docs=part, attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False).to_disk(args.out_dir / f"{name}.spacy")
        msg.good(f"{args.out_dir / name}.spacy: {len(part)} docs, {sum(len(d.ents) for d in part)} entities")


if __name__ == "__main__":
    main()
