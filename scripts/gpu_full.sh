#!/usr/bin/env bash
# The full-scale runs on a bare GPU machine (Python 3.12, torch, CuPy, no spaCy, no
# network), from the repository root, after scripts/build_gpu_bundle.sh filled the
# git-ignored .gpu/ here:
#
#   bash scripts/gpu_full.sh STAGE...      (stages run in the order given)
#
#   setup    unpack the bundle, show the GPU, check spaCy's NER runs on CupyOps
#   probe    the pace of PARALLEL SmolLM2 runs training at once on the one GPU: that
#            many short runs (PROBE_STEPS steps, 100 dev docs) on a SmolLM2-shaped model
#            with random weights (the speed of the real one; .gpu/tokenizer holds its
#            config), their seconds per step kept on the machine for `smollm2`'s plan
#   smollm2  join and check SmolLM2's .gguf, convert it, then train every run of RUNS
#            on all of CoNLL-2003 (configs/ner_bidirectional.cfg, bf16), PARALLEL at a
#            time, and score each on the test set; a tarball of results/gpu-smollm2 in
#            $OUT, each run's console output in $OUT/runs/NAME.log. Back here:
#            tar -xzf results-gpu-smollm2.tar.gz, then `spacy project run gpu-report .`
#   llama1b  a Llama-3.2-1B-shaped model (random weights, SmolLM2's tokenizer) trained
#            with configs/ner_llama32_1b_gpu.cfg, scored by `spacy evaluate` in a fresh
#            process (the >= 4 GiB save/load path); tarball of results/gpu-llama1b in $OUT
#
# A run's NAME says what it trains: MODE[-lrRATE][-headWIDTH]-sSEED, where MODE is
# causal, bidirectional, layerwiseK (bidirectional from layer K up) or echo, lrRATE a
# peak learning rate in decimals (default SMOL_LR), headWIDTH the NER head's
# hidden_width (default the config's 64) and SEED the seed: causal-s0,
# bidirectional-lr0.0001-s1, layerwise15-head128-s0.
#
# Device calls, one right after the other (a machine is given back after ~30 s idle;
# call B needs what call A left on it). One call carries at most 64 MiB with the
# working tree; build_gpu_bundle.sh prints the sizes (about 58.6 MiB each for A and B):
#   A  carry: .gpu/site.tar.xz .gpu/tokenizer .gpu/corpus .gpu/smollm2.gguf.part-aa .gpu/smollm2.gguf.sha256
#      command: PARALLEL=6 bash scripts/gpu_full.sh setup probe   (147 s; timeout 240 s), or
#      `bash scripts/gpu_full.sh setup` alone (48 s) and PROBE="6 1.452 24" in call B
#   B  within ~30 s of A's end; carry: .gpu/smollm2.gguf.part-ab
#      command: PARALLEL=6 RUNS="..." DEADLINE_S=560 bash scripts/gpu_full.sh smollm2 (timeout 600 s);
#      every run of the default RUNS is committed now (the last, layerwise15-s1, by
#      PROBE="6 1.452 24" DEADLINE_S=580 bash scripts/gpu_full.sh smollm2 on 2026-11-28:
#      504 s alone); a further call names its runs, e.g. SEEDS=2 for a third seed of each
#   (the 1B check, done on 2026-11-27: BIG_STEPS=200 bash scripts/gpu_full.sh setup llama1b)
# Measured on one H200 (2026-11-27, docs/results.md): machine start and transfer of A
# ~30 s; setup 48 s; llama1b with BIG_STEPS=200: 17 s to build the 1B shape, 229 s to
# train (three 4.6 GiB saves included), then over 35 s for `spacy evaluate` in a fresh
# process; smollm2: 21 s to convert the .gguf, then 335 s for one run alone of 600
# steps x 2,000 words (~5.9 epochs: four dev evaluations and the test scoring
# included), 17 GB of GPU memory and mostly waiting on the CPU side: several runs share
# the card (PARALLEL), each with its share of the CPU cores. Per step: 0.49 s alone,
# 0.53-0.54 s each with two at once (365-372 s per run), 1.45 s each with six (probe).
# With DEADLINE_S, `smollm2` starts only as many runs at once as it expects to finish
# in time (scripts/gpu_plan.py): from the probe's pace at PARALLEL (a run's time taken
# as its initialisation, 1.1 x SMOL_STEPS steps at that pace, and 30 s of test
# scoring; fewer runs at once taken as proportionally faster, but no faster than
# SINGLE_PACE_S per step, one run alone) or, without a probe, one at a time by the
# longest finished run.
# A call cut short by its limit still leaves the runs finished before it in
# $OUT/results-gpu-smollm2.tar.gz (refreshed after each run). A later call skips every
# finished run: those whose test.json is in results/gpu-smollm2 (committed ones, on any
# machine) or in $TMP_ROOT/results (while the machine is warm; remove
# $TMP_ROOT/results/gpu-smollm2 there to redo them with other settings).
#
# Settings (environment, all optional): GPU_ID (0; -1 = CPU), RUNS (every MODE-sSEED
# of MODES "causal bidirectional layerwise15" and SEEDS "0 1", seeds outermost, so a
# call cut short still has the comparison for the first seed), PARALLEL (1),
# SMOL_STEPS (600), SMOL_BATCH_WORDS (2000), SMOL_LR (0.0002), BIG_STEPS (300),
# PROBE_STEPS (40), SINGLE_PACE_S (0.5: one run alone on the H200), PROBE (a probe's
# figures "RUNS_AT_ONCE SECONDS_PER_STEP INIT_SECONDS" instead of running the probe
# stage again on a fresh machine, e.g. the H200's "6 1.452 24"),
# SMOL_MODEL_DIR / BIG_MODEL_DIR (a model directory to use instead of the converted
# .gguf, also for the probe / the 1B shape), CORPUS_DIR (.gpu/corpus), OUT
# (metrics/gpu), PY (python3), SKIP_BUNDLE=1 (use the current Python environment
# instead of .gpu/site.tar.xz), TMP_ROOT (/tmp: bundle, models, training output),
# DEADLINE_S (0 = none: seconds from the script's start by which every started
# SmolLM2 run should be done). The CPU test (tests/test_gpu_script.py) runs every
# stage but setup with a tiny model.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-metrics/gpu}
GPU_ID=${GPU_ID:-0}
MODES=${MODES:-causal bidirectional layerwise15}
SEEDS=${SEEDS:-0 1}
RUNS=${RUNS:-$(for seed in $SEEDS; do for mode in $MODES; do printf '%s ' "$mode-s$seed"; done; done)}
PARALLEL=${PARALLEL:-1}
PROBE_STEPS=${PROBE_STEPS:-40}
SINGLE_PACE_S=${SINGLE_PACE_S:-0.5}
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
  case $stage in setup|probe|smollm2|llama1b) ;; *) fail "unknown stage '$stage' (setup, probe, smollm2, llama1b)";; esac
done
[ $# -gt 0 ] || fail "no stage given (setup, probe, smollm2, llama1b)"
(( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )) || fail "needs bash 5.1 or newer (wait -n -p), this is $BASH_VERSION"
[[ $PARALLEL =~ ^[1-9][0-9]*$ ]] || fail "PARALLEL=$PARALLEL: expected a whole number of runs at once, 1 or more"
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

# The config overrides of the run NAME (see the header for the names)
run_overrides() {
  local name=$1 rest seed mode token
  [[ $name =~ ^(.+)-s([0-9]+)$ ]] || fail "run '$name': expected MODE[-lrRATE][-headWIDTH]-sSEED, e.g. causal-s0 or bidirectional-lr0.0001-s1"
  rest=${BASH_REMATCH[1]} seed=${BASH_REMATCH[2]}
  IFS=- read -r -a tokens <<< "$rest"
  mode=${tokens[0]}
  case $mode in
    causal) echo "--components.transformer.model.attention causal" ;;
    bidirectional) echo "--components.transformer.model.attention bidirectional --components.transformer.model.bidirectional_from_layer 0" ;;
    layerwise[0-9]*) echo "--components.transformer.model.attention bidirectional --components.transformer.model.bidirectional_from_layer ${mode#layerwise}" ;;
    echo) echo "--components.transformer.model.attention echo" ;;
    *) fail "run '$name': unknown mode '$mode' (causal, bidirectional, layerwiseK, echo)" ;;
  esac
  local learn_rate=$SMOL_LR
  for token in "${tokens[@]:1}"; do
    if [[ $token =~ ^lr([0-9]*\.?[0-9]+)$ ]]; then
      learn_rate=${BASH_REMATCH[1]}
    elif [[ $token =~ ^head([1-9][0-9]*)$ ]]; then
      echo "--components.ner.model.hidden_width ${BASH_REMATCH[1]}"
    else
      fail "run '$name': unknown setting '$token' (lrRATE in decimals, e.g. lr0.0001, or headWIDTH, e.g. head128)"
    fi
  done
  echo "--training.optimizer.learn_rate.initial_rate $learn_rate --system.seed $seed"
}

# One SmolLM2 run, trained on all of CoNLL-2003 and scored on its test set
smollm2_run() {
  local name=$1 model=$2
  local overrides; overrides=$(run_overrides "$name")
  # shellcheck disable=SC2046,SC2086
  $PY scripts/train_run.py configs/ner_bidirectional.cfg "$TMP_ROOT/training/gpu-smollm2/$name" \
    --gpu-id "$GPU_ID" --max-steps "$SMOL_STEPS" --record "$SMOL_RESULTS/$name" \
    --paths.model "$model" --paths.train "$CORPUS_DIR/train.spacy" --paths.dev "$CORPUS_DIR/dev.spacy" \
    $(device_overrides) --training.batcher.size "$SMOL_BATCH_WORDS" --nlp.batch_size 256 $overrides
  $PY scripts/evaluate_run.py "$TMP_ROOT/training/gpu-smollm2/$name/model-best" "$CORPUS_DIR/test.spacy" \
    "$SMOL_RESULTS/$name/test.json" --gpu-id "$GPU_ID"
}

# Each run's share of the CPU cores when N run at once
threads_for() { local n=$(( $(nproc) / $1 )); echo $(( n > 0 ? n : 1 )); }

# How many of the COUNT pending runs to start together (0: none would finish by
# DEADLINE_S; scripts/gpu_plan.py judges)
wave_size() {
  local count=$1 longest=$2
  local cap=$(( count < PARALLEL ? count : PARALLEL ))
  if [ "$DEADLINE_S" -le 0 ]; then echo "$cap"; return 0; fi
  $PY scripts/gpu_plan.py "$cap" "$(since "$STARTED")" "$DEADLINE_S" "$SMOL_STEPS" "$SINGLE_PACE_S" "$longest" \
    "${PROBE:-$(cat "$TMP_ROOT/probe.txt" 2>/dev/null || true)}"
}

stage_probe() {
  local t0; t0=$(date +%s)
  env_setup
  local model=$SMOL_MODEL_DIR
  if [ -z "$model" ]; then
    model=$TMP_ROOT/smollm2-shape
    if [ ! -f "$model/config.json" ]; then
      [ -f .gpu/tokenizer/config.json ] || fail "missing .gpu/tokenizer/config.json: carry .gpu/tokenizer (scripts/build_gpu_bundle.sh puts SmolLM2's config there)"
      rm -rf "$model.partial"
      $PY -c "import sys; sys.path.insert(0, 'scripts'); from pathlib import Path; from benchmark import smollm2_shape
smollm2_shape(Path(sys.argv[1]), sys.argv[2])" "$model.partial" .gpu/tokenizer
      mv "$model.partial" "$model"
    fi
  fi
  local i pids=() threads; threads=$(threads_for "$PARALLEL")
  rm -rf "$TMP_ROOT/training/probe" "$TMP_ROOT/probe.txt"
  mkdir -p "$OUT/runs"
  for i in $(seq 1 "$PARALLEL"); do
    # shellcheck disable=SC2046
    OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads $PY scripts/train_run.py configs/ner_bidirectional.cfg \
      "$TMP_ROOT/training/probe/p$i" --gpu-id "$GPU_ID" --max-steps "$PROBE_STEPS" --system.seed "$i" \
      --paths.model "$model" --paths.train "$CORPUS_DIR/train.spacy" --paths.dev "$CORPUS_DIR/dev.spacy" \
      --corpora.dev.limit 100 $(device_overrides) --training.batcher.size "$SMOL_BATCH_WORDS" \
      > "$OUT/runs/probe-p$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "probe run $((i + 1)) failed: its output is in $OUT/runs/probe-p$((i + 1)).log"
  done
  $PY - "$PARALLEL" "$TMP_ROOT/training/probe" "$TMP_ROOT/probe.txt" <<'EOF'
import json, sys
from pathlib import Path
from statistics import median

n, runs = int(sys.argv[1]), [json.loads(p.read_text()) for p in Path(sys.argv[2]).glob("p*/run.json")]
pace = median(r["loop_s_per_step"] for r in runs)
init = max(r["init_s"] for r in runs)
memory = [r.get("peak_gpu_allocated_mb") for r in runs]
Path(sys.argv[3]).write_text(f"{n} {pace} {init}\n")
print(f"probe: {n} runs at once, {pace:.3f} s per step of each (median), {n / pace:.2f} steps/s in all, "
      f"initialisation up to {init:.0f} s, peak GPU allocated per run (MB): {memory}")
EOF
  echo "stage probe: $(since "$t0") s"
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
  local name pending=() longest=0 failed=0
  for name in $RUNS; do
    run_overrides "$name" > /dev/null  # a bad name fails before any run starts
    if [ -f "$SMOL_RESULTS/$name/test.json" ]; then
      echo "$name: done already ($SMOL_RESULTS/$name/test.json)"
    else
      pending+=("$name")
    fi
  done
  mkdir -p "$OUT/runs"
  export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
  while [ ${#pending[@]} -gt 0 ]; do
    local n; n=$(wave_size ${#pending[@]} "$longest")
    if [ "$n" -eq 0 ]; then
      echo "not started: ${pending[*]} (DEADLINE_S=$DEADLINE_S, $(since "$STARTED") s gone; none would finish in time)"
      break
    fi
    local threads; threads=$(threads_for "$n")
    declare -A started=() names=()
    local pid
    for name in "${pending[@]:0:n}"; do
      OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads smollm2_run "$name" "$model" > "$OUT/runs/$name.log" 2>&1 &
      names[$!]=$name started[$!]=$(date +%s)
    done
    echo "started $n at once, $threads CPU threads each: ${pending[*]:0:n} ($(date -u +%H:%M:%S) UTC)"
    pending=("${pending[@]:n}")
    while [ ${#names[@]} -gt 0 ]; do
      local status=0
      wait -n -p pid "${!names[@]}" || status=$?
      name=${names[$pid]}
      local took; took=$(since "${started[$pid]}")
      unset "names[$pid]" "started[$pid]"
      if [ "$status" -ne 0 ]; then
        echo "$name: FAILED (exit $status) after $took s; the end of $OUT/runs/$name.log:"
        tail -n 15 "$OUT/runs/$name.log"
        failed=1
        continue
      fi
      [ "$took" -gt "$longest" ] && longest=$took
      # the dev scores along the way (spaCy's table rows) and the test score
      grep -E '^ *[0-9]+ +[0-9]+ ' "$OUT/runs/$name.log" | sed "s/^/$name: /" || true
      echo "$name: $(tail -n 1 "$OUT/runs/$name.log"); $took s wall (train and test)"
      save_results "$SMOL_RESULTS" "$OUT/results-gpu-smollm2.tar.gz"
    done
    unset started names
  done
  echo "stage smollm2: $(since "$t0") s"
  [ "$failed" -eq 0 ] || fail "some SmolLM2 runs failed (above)"
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
