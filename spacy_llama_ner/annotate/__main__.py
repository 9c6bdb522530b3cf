"""python -m spacy_llama_ner.annotate: the same command as python -m spacy llama-ner annotate."""
import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m spacy_llama_ner.annotate"))
