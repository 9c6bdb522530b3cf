#!/usr/bin/env bash
# Prepare what a bare GPU machine with only PyTorch (Python 3.12, CuPy for CUDA 13,
# transformers 5.x, no spaCy, no network) needs to run scripts/gpu_benchmark.sh and
# scripts/gpu_full.sh:
#   .gpu/site.tar.xz  spaCy, thinc, spacy-transformers, transformers 4.53.2 and their
#                     small dependencies, plus this package, unpacked from CPython 3.12
#                     manylinux wheels, shared objects stripped (the wheels are ~73 MB,
#                     more than one device call may carry)
#   .gpu/tokenizer    SmolLM2's tokenizer (standing in for Llama 3's) and config (for
#                     gpu_full.sh's probe: a model of its shape, random weights)
#   .gpu/corpus/{train,dev,test}.spacy  all of CoNLL-2003 from DATA_DIR (research
#                     licence: only ever in the git-ignored .gpu/, never committed)
#   .gpu/smollm2.gguf.part-aa, .part-ab, .sha256  SmolLM2's .gguf (98 MB) in two parts
#                     and the sha256 of the whole file: one device call carries at most
#                     64 MiB, so part-aa travels with the bundle and corpus (call A) and
#                     part-ab alone right after it (call B); gpu_full.sh joins and checks
#                     them. The cut is placed so that both calls weigh the same.
# .gpu is git-ignored. KEEP_SITE=1 keeps an existing .gpu/site.tar.xz (no download).
# Then, on the GPU machine: bash scripts/gpu_benchmark.sh, or scripts/gpu_full.sh
# (its header lists the device calls and what each carries).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_DIR=${DATA_DIR:-../shared/data/conll2003}
GGUF=${GGUF:-assets/models/SmolLM2-135M.gguf}
TOKENIZER_FROM=${TOKENIZER_FROM:-assets/models/SmolLM2-135M}
# what one call may carry with the working tree (the limit is 64 MiB; keep a margin)
CALL_LIMIT_MIB=${CALL_LIMIT_MIB:-62}
for f in "$DATA_DIR/train.txt" "$DATA_DIR/dev.txt" "$DATA_DIR/test.txt" "$GGUF" "$TOKENIZER_FROM/tokenizer.json"; do
  [ -f "$f" ] || { echo "missing: $f (set DATA_DIR, GGUF or TOKENIZER_FROM; make model fetches the model)" >&2; exit 1; }
done

if [ "${KEEP_SITE:-0}" = 1 ] && [ -f .gpu/site.tar.xz ]; then
  echo "keeping .gpu/site.tar.xz"
  find .gpu -mindepth 1 -maxdepth 1 ! -name site.tar.xz -exec rm -rf {} +
else
  WHL=$(mktemp -d)
  rm -rf .gpu && mkdir -p .gpu/site
  PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS -d $WHL \
    spacy==3.8.18 thinc==8.3.14 spacy-transformers==1.4.0 transformers==4.53.2 tokenizers==0.21.4 \
    huggingface-hub==0.36.2 srsly==2.5.6 catalogue==2.0.10 confection==1.3.4 wasabi==1.1.3 weasel==1.0.1 \
    cymem==2.0.16 preshed==3.0.15 murmurhash==1.0.16 blis==1.3.4 spacy-legacy==3.0.12 spacy-loggers==1.0.5 \
    spacy-alignments==0.9.3 cloudpathlib==0.26.0 smart-open==9.0.2 pydantic==2.14.4 pydantic-core==2.50.5 \
    annotated-types==0.8.0 typing-inspection==0.4.5 langcodes gguf==0.19.0
  $PY -m pip wheel -q --no-deps --no-build-isolation -w $WHL .
  for wheel in $WHL/*.whl; do unzip -q -o "$wheel" -d .gpu/site; done
  find .gpu/site -name "*.so" -exec strip --strip-unneeded {} +
  find .gpu/site -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
  tar -C .gpu -cJf .gpu/site.tar.xz site && rm -rf .gpu/site $WHL
fi
mkdir -p .gpu/tokenizer .gpu/corpus
cp "$TOKENIZER_FROM/tokenizer.json" "$TOKENIZER_FROM/tokenizer_config.json" \
   "$TOKENIZER_FROM/special_tokens_map.json" "$TOKENIZER_FROM/config.json" .gpu/tokenizer/
for split in train dev test; do
  $PY -m spacy_llama_ner.conll "$DATA_DIR/$split.txt" ".gpu/corpus/$split.spacy"
done

# SmolLM2's .gguf in two parts, cut so that call A (working tree, bundle, tokenizer,
# corpus, sha256, part-aa) and call B (working tree, part-ab) weigh about the same
bytes() { du -cb "$@" | tail -1 | cut -f1; }
echo "$(sha256sum "$GGUF" | cut -d' ' -f1)  smollm2.gguf" > .gpu/smollm2.gguf.sha256
TREE=$( { git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null || true; } | tail -1 | cut -f1)
OTHER=$(bytes .gpu/site.tar.xz .gpu/tokenizer .gpu/corpus .gpu/smollm2.gguf.sha256)
TOTAL=$(stat -c %s "$GGUF")
CUT=$(( (TOTAL - OTHER) / 2 ))
[ "$CUT" -gt 0 ] || CUT=$(( TOTAL / 2 ))
head -c "$CUT" "$GGUF" > .gpu/smollm2.gguf.part-aa
tail -c +$((CUT + 1)) "$GGUF" > .gpu/smollm2.gguf.part-ab
JOINED=$(cat .gpu/smollm2.gguf.part-aa .gpu/smollm2.gguf.part-ab | sha256sum | cut -d' ' -f1)
[ "$JOINED" = "$(cut -d' ' -f1 .gpu/smollm2.gguf.sha256)" ] || { echo "the two parts do not join to $GGUF" >&2; exit 1; }

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
CALL_A=$(( TREE + OTHER + $(stat -c %s .gpu/smollm2.gguf.part-aa) ))
CALL_B=$(( TREE + $(stat -c %s .gpu/smollm2.gguf.part-ab) ))
du -sh --apparent-size .gpu/*
du -h --apparent-size .gpu/corpus/* .gpu/tokenizer/*
echo "working tree (tracked and untracked, not ignored): $(mib $TREE)"
echo "call A carries .gpu/site.tar.xz .gpu/tokenizer .gpu/corpus .gpu/smollm2.gguf.part-aa .gpu/smollm2.gguf.sha256: $(mib $CALL_A) with the working tree"
echo "call B (within ~30 s of call A) carries .gpu/smollm2.gguf.part-ab: $(mib $CALL_B) with the working tree"
LIMIT=$(( CALL_LIMIT_MIB * 1048576 ))
if [ "$CALL_A" -gt "$LIMIT" ] || [ "$CALL_B" -gt "$LIMIT" ]; then
  echo "a call would carry more than $CALL_LIMIT_MIB MiB: make the working tree smaller (or split in three)" >&2
  exit 1
fi
