#!/usr/bin/env bash
# The full-scale runs on a bare GPU machine (Python 3.12, torch, CuPy, no spaCy, no
# network), from the repository root, after scripts/build_gpu_bundle.sh filled the
# git-ignored .gpu/ here:
#
#   bash scripts/gpu_full.sh STAGE...      (stages run in the order given)
#
#   setup    unpack the bundle, show the GPU, check spaCy's NER runs on CupyOps
#   smollm2  join and check SmolLM2's .gguf, convert it, then train every MODE x SEED
#            on all of CoNLL-2003 (configs/ner_bidirectional.cfg, bf16) and score each
#            on the test set; a tarball of results/gpu-smollm2 in $OUT. Back here:
#            tar -xzf results-gpu-smollm2.tar.gz, then scripts/compare.py and
#            scripts/learning_curves.py on results/gpu-smollm2 (as full-report does)
#   llama1b  a Llama-3.2-1B-shaped model (random weights, SmolLM2's tokenizer) trained
#            with configs/ner_llama32_1b_gpu.cfg, scored by `spacy evaluate` in a fresh
#            process (the >= 4 GiB save/load path); tarball of results/gpu-llama1b in $OUT
#
# Device calls, one right after the other (a machine is given back after ~30 s idle;
# call B needs what call A left on it). One call carries at most 64 MiB with the
# working tree; build_gpu_bundle.sh prints the sizes (about 58.6 MiB each for A and B):
#   A  carry: .gpu/site.tar.xz .gpu/tokenizer .gpu/corpus .gpu/smollm2.gguf.part-aa .gpu/smollm2.gguf.sha256
#      command: BIG_STEPS=200 bash scripts/gpu_full.sh setup llama1b        (timeout 420 s)
#   B  within ~30 s of A's end; carry: .gpu/smollm2.gguf.part-ab
#      command: SEEDS="0 1" DEADLINE_S=540 bash scripts/gpu_full.sh smollm2 (timeout 600 s)
#   then, on the same warm machine, B's command again (no carry) for the next run
# Measured on one H200 (2026-11-27, docs/results.md): machine start and transfer of A
# ~30 s; setup 48 s; llama1b with BIG_STEPS=200: 17 s to build the 1B shape, 229 s to
# train (three 4.6 GiB saves included), then over 35 s for `spacy evaluate` in a fresh
# process (A's 330-s limit cut it just after the scores were written); smollm2: 21 s
# to convert the .gguf, then 335 s per run of 600 steps x 2,000 words (~5.9 epochs:
# four dev evaluations and the test scoring included). One 600-s call holds one SmolLM2
# run; the default 3 modes x 2 seeds need ~34 device minutes, more than one session's
# 15, so the table grows over calls and sessions.
# A call cut short by its limit still leaves the runs finished before it in
# $OUT/results-gpu-smollm2.tar.gz (refreshed after each run). A later call skips every
# finished run: those whose test.json is in results/gpu-smollm2 (committed ones, on any
# machine) or in $TMP_ROOT/results (while the machine is warm; remove
# $TMP_ROOT/results/gpu-smollm2 there to redo them with other settings).
#
# Settings (environment, all optional): GPU_ID (0; -1 = CPU), MODES ("causal
# bidirectional layerwise15"; layerwiseK = bidirectional from layer K up; echo also runs),
# SEEDS ("0 1"),
# SMOL_STEPS (600), SMOL_BATCH_WORDS (2000), SMOL_LR (0.0002), BIG_STEPS (300),
# SMOL_MODEL_DIR / BIG_MODEL_DIR (a model directory to use instead of the converted
# .gguf / the 1B shape), CORPUS_DIR (.gpu/corpus), OUT (metrics/gpu), PY (python3),
# SKIP_BUNDLE=1 (use the current Python environment instead of .gpu/site.tar.xz),
# TMP_ROOT (/tmp: bundle, models, training output), DEADLINE_S (0 = none: seconds after
# which no further SmolLM2 run starts that would not finish in time, judged by the
# longest finished one). The CPU test (tests/test_gpu_script.py) runs both training
# stages with a tiny model.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-metrics/gpu}
GPU_ID=${GPU_ID:-0}
MODES=${MODES:-causal bidirectional layerwise15}
SEEDS=${SEEDS:-0 1}
SMOL_STEPS=${SMOL_STEPS:-600}
SMOL_BATCH_WORDS=${SMOL_BATCH_WORDS:-2000}
SMOL_LR=${SMOL_LR:-0.0002}
BIG_STEPS=${BIG_STEPS:-300}
SMOL_MODEL_DIR=${SMOL_MODEL_DIR:-}
BIG_MODEL_DIR=${BIG_MODEL_DIR:-}
CORPUS_DIR=${CORPUS_DIR:-.gpu/corpus}
TMP_ROOT=${TMP_ROOT:-/tmp}
DEADLINE_S=${DEADLINE_S:-0}
SMOL_RESULTS=results/gpu-smollm2
BIG_RESULTS=results/gpu-llama1b
STARTED=$(date +%s)

fail() { echo "gpu_full.sh: $*" >&2; exit 1; }
since() { echo $(( $(date +%s) - $1 )); }

for stage in "$@"; do
  case $stage in setup|smollm2|llama1b) ;; *) fail "unknown stage '$stage' (setup, smollm2, llama1b)";; esac
done
[ $# -gt 0 ] || fail "no stage given (setup, smollm2, llama1b)"
mkdir -p "$OUT" "$TMP_ROOT"
OUT=$(cd "$OUT" && pwd)
# everything printed also goes to $OUT (only the end of the printed output comes back)
exec > >(tee -a "$OUT/gpu_full.log") 2>&1

# Each call is a fresh shell: every stage sets its environment with this.
env_setup() {
  export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
  [ "${SKIP_BUNDLE:-0}" = 1 ] && return 0
  [ -f .gpu/site.tar.xz ] || fail "missing .gpu/site.tar.xz: carry it (built by scripts/build_gpu_bundle.sh)"
  local sum
  sum=$(sha256sum .gpu/site.tar.xz | cut -d' ' -f1)
  if [ "$(cat "$TMP_ROOT/bundle/.unpacked" 2>/dev/null)" != "$sum" ]; then
    rm -rf "$TMP_ROOT/bundle" && mkdir -p "$TMP_ROOT/bundle"
    tar -C "$TMP_ROOT/bundle" -xJf .gpu/site.tar.xz
    echo "$sum" > "$TMP_ROOT/bundle/.unpacked"
  fi
  # the working tree first, so its spacy_llama_ner wins over the bundled copy
  export PYTHONPATH=$PWD:$TMP_ROOT/bundle/site
}

# Device settings as overrides: bf16 and the PyTorch allocator on a GPU; on the CPU
# float32 and no GPU allocator (the 1B config asks for both).
device_overrides() {
  if [ "$GPU_ID" -ge 0 ]; then
    echo "--system.gpu_allocator pytorch --components.transformer.model.dtype bfloat16"
  else
    echo "--system.gpu_allocator null --components.transformer.model.dtype float32"
  fi
}

stage_setup() {
  local t0; t0=$(date +%s)
  env_setup
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  else
    echo "no nvidia-smi on this machine"
  fi
  $PY -c "import torch, transformers, spacy, spacy_llama_ner
print(f'Python, torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, '
      f'spaCy {spacy.__version__}, spacy_llama_ner from {spacy_llama_ner.__file__}')"
  $PY scripts/gpu_check_ner.py "$GPU_ID"
  df -h "$TMP_ROOT" | tail -1
  echo "stage setup: $(since "$t0") s"
}

# SmolLM2's .gguf from its two parts (sha256-checked), converted once
smollm2_model() {
  local gguf=$TMP_ROOT/smollm2.gguf model=$TMP_ROOT/SmolLM2-135M
  if [ -f "$model/config.json" ]; then
    echo "$model: converted already" >&2
    echo "$model"
    return 0
  fi
  for part in .gpu/smollm2.gguf.part-aa .gpu/smollm2.gguf.part-ab .gpu/smollm2.gguf.sha256; do
    [ -f "$part" ] || fail "missing $part: call A carries part-aa and the .sha256, call B (on the same warm machine, within ~30 s of A) part-ab"
  done
  cat .gpu/smollm2.gguf.part-aa .gpu/smollm2.gguf.part-ab > "$gguf"
  local want got
  want=$(cut -d' ' -f1 .gpu/smollm2.gguf.sha256)
  got=$(sha256sum "$gguf" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then
    rm -f "$gguf"
    fail "the joined .gguf has sha256 $got, not $want: a part is stale or incomplete (rebuild with scripts/build_gpu_bundle.sh and carry both parts again)"
  fi
  echo "$gguf: sha256 $got (as expected)" >&2
  rm -rf "$model.partial"
  $PY -m spacy_llama_ner.convert_gguf "$gguf" "$model.partial" >&2
  mv "$model.partial" "$model"
  echo "$model"
}

# results/gpu-smollm2 also lives in $TMP_ROOT/results: a later call on the same warm
# machine finds the runs done before it even if the working tree was copied afresh
restore_results() {
  local dir=$1 run
  [ -d "$TMP_ROOT/$dir" ] || return 0
  for run in "$TMP_ROOT/$dir"/*/; do
    [ -d "$run" ] || continue
    [ -f "$dir/$(basename "$run")/test.json" ] || { mkdir -p "$dir"; cp -r "$run" "$dir/"; }
  done
}

save_results() {
  local dir=$1 tarball=$2
  mkdir -p "$TMP_ROOT/$dir"
  cp -r "$dir"/. "$TMP_ROOT/$dir/"
  tar -czf "$tarball" "$dir"
}

stage_smollm2() {
  local t0; t0=$(date +%s)
  env_setup
  local model=$SMOL_MODEL_DIR
  [ -n "$model" ] || model=$(smollm2_model)
  for split in train dev test; do
    [ -f "$CORPUS_DIR/$split.spacy" ] || fail "missing $CORPUS_DIR/$split.spacy: carry .gpu/corpus"
  done
  restore_results "$SMOL_RESULTS"
  local mode seed name attention run_start took longest=0
  # seeds outermost: a call cut short by its time limit still leaves every mode's run
  # for the first seed, i.e. the comparison, before any second seed
  for seed in $SEEDS; do
    for mode in $MODES; do
      case $mode in
        causal) attention="--components.transformer.model.attention causal" ;;
        bidirectional) attention="--components.transformer.model.attention bidirectional --components.transformer.model.bidirectional_from_layer 0" ;;
        layerwise[0-9]*) attention="--components.transformer.model.attention bidirectional --components.transformer.model.bidirectional_from_layer ${mode#layerwise}" ;;
        echo) attention="--components.transformer.model.attention echo" ;;
        *) fail "unknown mode '$mode' (causal, bidirectional, layerwiseK, echo)" ;;
      esac
      name=$mode-s$seed
      if [ -f "$SMOL_RESULTS/$name/test.json" ]; then
        echo "$name: done already ($SMOL_RESULTS/$name/test.json)"
        continue
      fi
      if [ "$DEADLINE_S" -gt 0 ] && [ $(( $(since "$STARTED") + longest )) -gt "$DEADLINE_S" ]; then
        echo "$name: not started (a run takes ~${longest} s; DEADLINE_S=$DEADLINE_S, $(since "$STARTED") s gone)"
        continue
      fi
      run_start=$(date +%s)
      # shellcheck disable=SC2046,SC2086
      $PY scripts/train_run.py configs/ner_bidirectional.cfg "$TMP_ROOT/training/gpu-smollm2/$name" \
        --gpu-id "$GPU_ID" --max-steps "$SMOL_STEPS" --record "$SMOL_RESULTS/$name" --system.seed "$seed" \
        --paths.model "$model" --paths.train "$CORPUS_DIR/train.spacy" --paths.dev "$CORPUS_DIR/dev.spacy" \
        $(device_overrides) --training.batcher.size "$SMOL_BATCH_WORDS" --nlp.batch_size 256 \
        --training.optimizer.learn_rate.initial_rate "$SMOL_LR" $attention
      $PY scripts/evaluate_run.py "$TMP_ROOT/training/gpu-smollm2/$name/model-best" "$CORPUS_DIR/test.spacy" \
        "$SMOL_RESULTS/$name/test.json" --gpu-id "$GPU_ID"
      took=$(since "$run_start")
      [ "$took" -gt "$longest" ] && longest=$took
      echo "$name: $took s wall (train and test)"
      save_results "$SMOL_RESULTS" "$OUT/results-gpu-smollm2.tar.gz"
    done
  done
  echo "stage smollm2: $(since "$t0") s"
}

stage_llama1b() {
  local t0; t0=$(date +%s)
  env_setup
  local model=$BIG_MODEL_DIR training=$TMP_ROOT/training/gpu-llama1b
  for split in train dev test; do
    [ -f "$CORPUS_DIR/$split.spacy" ] || fail "missing $CORPUS_DIR/$split.spacy: carry .gpu/corpus"
  done
  if [ -z "$model" ]; then
    model=$TMP_ROOT/llama-1b-shape
    if [ ! -f "$model/config.json" ]; then
      [ -f .gpu/tokenizer/tokenizer.json ] || fail "missing .gpu/tokenizer: carry it"
      rm -rf "$model.partial"
      $PY -c "import sys; sys.path.insert(0, 'scripts'); from pathlib import Path; from benchmark import llama_1b_shape
llama_1b_shape(Path(sys.argv[1]), sys.argv[2])" "$model.partial" .gpu/tokenizer
      mv "$model.partial" "$model"
    fi
    echo "$model: $(du -sh "$model" | cut -f1) (bf16 random weights, $(since "$t0") s)"
  fi
  local run_start; run_start=$(date +%s)
  # shellcheck disable=SC2046
  $PY scripts/train_run.py configs/ner_llama32_1b_gpu.cfg "$training" --gpu-id "$GPU_ID" \
    --max-steps "$BIG_STEPS" --record "$BIG_RESULTS" --paths.model "$model" \
    --paths.train "$CORPUS_DIR/train.spacy" --paths.dev "$CORPUS_DIR/dev.spacy" $(device_overrides)
  echo "llama1b training: $(since "$run_start") s wall"
  # the tarball after each step: a call cut short by its time limit keeps what is done
  save_results "$BIG_RESULTS" "$OUT/results-gpu-llama1b.tar.gz"
  run_start=$(date +%s)
  # a fresh process loads the saved pipeline back
  $PY -m spacy evaluate "$training/model-best" "$CORPUS_DIR/test.spacy" --gpu-id "$GPU_ID" \
    --output "$BIG_RESULTS/test.json"
  echo "llama1b evaluate (load and score in a fresh process): $(since "$run_start") s wall"
  save_results "$BIG_RESULTS" "$OUT/results-gpu-llama1b.tar.gz"
  echo "model-best on disk: $(du -sh "$training/model-best" | cut -f1)"
  find "$training/model-best" -type f -printf '%s %p\n' | sort -n | tail -1 |
    awk '{ printf "largest file: %s, %.2f GiB (%d bytes)\n", $2, $1 / 2^30, $1 }'
  $PY -c "import json, sys; t = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
print(f\"llama1b: test F1 {100 * t['ents_f']:.1f}, dev F1 {100 * r['dev_scores']['ents_f']:.1f}, \"
      f\"train {r['train_wall_s']} s, peak GPU allocated {r.get('peak_gpu_allocated_mb', '-')} MB\")" \
    "$BIG_RESULTS/test.json" "$BIG_RESULTS/run.json"
  echo "stage llama1b: $(since "$t0") s"
}

for stage in "$@"; do
  echo "=== $stage ($(date -u +%H:%M:%S) UTC)"
  "stage_$stage"
done
echo "all stages ($*): $(since "$STARTED") s"
