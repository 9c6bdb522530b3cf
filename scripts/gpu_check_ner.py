"""Check that spaCy's own NER trains and runs on the GPU (thinc's CupyOps on the
machine's CuPy): a few updates on one sentence, then its entities.

    python scripts/gpu_check_ner.py [GPU_ID]

GPU_ID defaults to 0; a negative one checks the CPU path instead (no CuPy needed).
Used by scripts/gpu_benchmark.sh and scripts/gpu_full.sh.
"""
import sys

import spacy
import thinc
from spacy.training import Example


def main(gpu_id: int = 0) -> None:
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    text = "Peter Smith flew to London ."
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": [(0, 11, "PER"), (20, 26, "LOC")]})]
    nlp.initialize(lambda: examples)
    for _ in range(30):
        losses = nlp.update(examples)
    ops = type(nlp.get_pipe("ner").model.ops).__name__
    versions = f"spaCy {spacy.__version__}, thinc {thinc.__version__}"
    if gpu_id >= 0:
        import cupy

        versions += f", CuPy {cupy.__version__}"
    print(f"{versions}: NER on {ops}, loss {losses['ner']:.3f}, "
          f"entities {[(e.text, e.label_) for e in nlp(text).ents]}")
    expected = "CupyOps" if gpu_id >= 0 else "NumpyOps"
    assert ops == expected, f"spaCy's NER runs on {ops}, not {expected}"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
