#!/usr/bin/env bash
# Run on a bare GPU machine with PyTorch and CuPy (after scripts/build_gpu_bundle.sh
# prepared .gpu/ on a machine with network): unpack the bundle, check that spaCy's
# NER runs on the GPU, then benchmark a Llama-3.2-1B-shaped model (random weights)
# in bf16 and profile its training step (scripts/profile_step.py: where the time
# goes), then the same step with a 2-layer, 64-wide backbone (tiny-shape: the
# pipeline's own cost outside the backbone, on this machine's host and GPU).
# Results go to $OUT (default: metrics/); PROFILE=0 skips both profiles; BATCH_DOCS
# sets the sentences per batch (default 256, as in the committed figures; 1024 shows
# what larger batches do to sentences/s and to the floor's share); DTYPE the compute
# dtype (default bfloat16; float16 trains with loss scaling); MODEL the model of the
# benchmark and the first profile (default llama-3.2-1b-shape; smollm2-shape is SmolLM2's
# shape with random weights, from .gpu/tokenizer's config). Needs .gpu/site.tar.xz,
# .gpu/tokenizer and .gpu/corpus/dev.spacy (about 22 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-metrics}
BATCH_DOCS=${BATCH_DOCS:-256}
DTYPE=${DTYPE:-bfloat16}
MODEL=${MODEL:-llama-3.2-1b-shape}
VARIANTS=${VARIANTS:-strict-forward,limit-forward,ours-causal-infer,ours-bidirectional-infer,strict-train,limit-train,ours-bidirectional-train,ours-thincadam-train,ours-ckpt-train,ours-freeze-train,ours-lora-train,seed-train}
mkdir -p /tmp/bundle "$OUT"
tar -C /tmp/bundle -xJf .gpu/site.tar.xz
# the working tree first, so its spacy_llama_ner wins over the bundled copy
export PYTHONPATH=$PWD:/tmp/bundle/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# spaCy's own NER, trained and run on the GPU (thinc's CupyOps on the machine's CuPy)
python3 scripts/gpu_check_ner.py 0
python3 scripts/benchmark.py --model "$MODEL" --tokenizer-from .gpu/tokenizer \
  --data .gpu/corpus/dev.spacy --gpu-id 0 --dtype "$DTYPE" --n-docs 1024 --batch-docs "$BATCH_DOCS" --repeats 2 \
  --variants "$VARIANTS" --out "$OUT/benchmark-gpu"
if [ "${PROFILE:-1}" = 1 ]; then
  python3 scripts/profile_step.py --model "$MODEL" --tokenizer-from .gpu/tokenizer \
    --data .gpu/corpus/dev.spacy --gpu-id 0 --dtype "$DTYPE" --n-docs 1024 --batch-docs "$BATCH_DOCS" --out "$OUT/profile-gpu"
  python3 scripts/profile_step.py --model tiny-shape --tokenizer-from .gpu/tokenizer \
    --data .gpu/corpus/dev.spacy --gpu-id 0 --dtype "$DTYPE" --n-docs 1024 --batch-docs "$BATCH_DOCS" --out "$OUT/profile-gpu-tiny-shape"
fi
