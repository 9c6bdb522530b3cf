#!/usr/bin/env bash
# Run on a bare GPU machine with PyTorch and CuPy (after scripts/build_gpu_bundle.sh
# prepared .gpu/ on a machine with network): unpack the bundle, check that spaCy's
# NER runs on the GPU, then benchmark a Llama-3.2-1B-shaped model (random weights)
# in bf16. Results go to $OUT (default: metrics/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-metrics}
VARIANTS=${VARIANTS:-limit-forward,ours-causal-infer,ours-bidirectional-infer,limit-train,ours-bidirectional-train,ours-lora-train,seed-train}
mkdir -p /tmp/bundle "$OUT"
tar -C /tmp/bundle -xJf .gpu/site.tar.xz
# the working tree first, so its spacy_llama_ner wins over the bundled copy
export PYTHONPATH=$PWD:/tmp/bundle/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'PY'
# spaCy's own NER, trained and run on the GPU (thinc's CupyOps on the machine's CuPy)
import cupy, spacy, thinc
from spacy.training import Example
spacy.require_gpu(0)
nlp = spacy.blank("en")
nlp.add_pipe("ner")
examples = [Example.from_dict(nlp.make_doc("Peter Smith flew to London ."), {"entities": [(0, 11, "PER"), (20, 26, "LOC")]})]
nlp.initialize(lambda: examples)
for _ in range(30):
    losses = nlp.update(examples)
ops = type(nlp.get_pipe("ner").model.ops).__name__
print(f"spaCy {spacy.__version__}, thinc {thinc.__version__}, CuPy {cupy.__version__}: NER on {ops}, "
      f"loss {losses['ner']:.3f}, entities {[(e.text, e.label_) for e in nlp('Peter Smith flew to London .').ents]}")
assert ops == "CupyOps"
PY
python3 scripts/benchmark.py --model llama-3.2-1b-shape --tokenizer-from .gpu/tokenizer \
  --data .gpu/dev.spacy --gpu-id 0 --dtype bfloat16 --n-docs 1024 --batch-docs 256 --repeats 2 \
  --variants "$VARIANTS" --out "$OUT/benchmark-gpu"
