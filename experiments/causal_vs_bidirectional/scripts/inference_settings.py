"""CPU inference settings of trained pipelines, side by side (issue 45's table).

    python scripts/inference_settings.py PIPELINE [PIPELINE ...] --test corpus/full/test.spacy \
        --out docs/inference_settings [--settings float32,int8,layer20,int8+layer20] [--speed-docs 600]

Every setting runs on every pipeline (e.g. a full-depth one and one trained with
`output_layer = 20`); the first pipeline's first setting is the baseline of the ratios.

Each setting runs in its own process (its memory is its own): the pipeline loads with
that setting (`quantize = "int8"`, `output_layer = N`, a get_spans window and stride
for long docs: all set at load, the pipeline on disk unchanged; see setting_config), is timed over the whole test set through nlp.pipe, and scored
there (entity P/R/F1, spaCy's scorer). The pipeline gets the test set's own words (fresh
docs without annotation, as `spacy evaluate` gives them), so the F1 is CoNLL's, on the gold
tokenization: the text through spaCy's tokenizer would split a third of CoNLL-2003's
sentences differently ("2-1" into three tokens). On the first --speed-docs test docs the whole
pipeline and its strict limit (the loaded backbone alone, on the same word pieces and
length groups, no spaCy, alignment or NER) run in turn, --repeats times: the median
ratio says how much of the time is the plugin's own. Writes OUT.json and OUT.md.
"""
import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

STUDY = Path(__file__).resolve().parent.parent


def setting_config(setting: str) -> dict:
    """Config overrides for a setting: float32, int8, layerN (output_layer = N), windowWsS
    (get_spans window = W, stride = S: a long doc's spans, overlapping by W - S tokens),
    or a + of them."""
    model = {}
    for part in setting.split("+"):
        if part == "int8":
            model["quantize"] = "int8"
        elif part.startswith("layer") and part[len("layer"):].isdigit():
            model["output_layer"] = int(part[len("layer"):])
        elif part.startswith("window") and "s" in part[len("window"):]:
            window, stride = part[len("window"):].split("s", 1)
            model["get_spans"] = {"window": int(window), "stride": int(stride)}
        elif part != "float32":
            raise SystemExit(f"unknown setting {part!r}: float32, int8, layerN, windowWsS or a + of them")
    return {"components": {"transformer": {"model": model}}} if model else {}


def pipeline_name(path: str) -> str:
    """training/confidence/full-s0/model-best -> full-s0/model-best"""
    return "/".join(Path(path).resolve().parts[-2:])


def current_rss_mb() -> float:
    """The process's resident memory now (Linux), where ru_maxrss gives its peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(args) -> dict:
    import spacy
    import torch
    from spacy.scorer import Scorer
    from spacy.tokens import DocBin
    from spacy.training import Example

    from spacy_llama_ner.backbone.alignment import tokenize_spans
    from spacy_llama_ner.confidence.measures import fresh_copies

    start = time.perf_counter()
    nlp = spacy.load(args.pipeline, config=setting_config(args.setting))
    load_s = time.perf_counter() - start
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_after_load = current_rss_mb()
    gold = list(DocBin().from_disk(args.test).get_docs(nlp.vocab))
    words = sum(len(d) for d in gold)
    list(nlp.pipe(fresh_copies(nlp.vocab, gold[:32])))  # warm-up: first-call allocations and kernel choices
    inputs = fresh_copies(nlp.vocab, gold)  # each pass its own: the NER keeps entities a doc already has
    start = time.perf_counter()
    predicted = list(nlp.pipe(inputs))
    pipe_s = time.perf_counter() - start
    scores = Scorer.score_spans([Example(p, g) for p, g in zip(predicted, gold)], "ents")

    transformer = nlp.get_pipe("transformer")
    shim = transformer.model.shims[0]
    slice_gold = gold[: args.speed_docs]
    slice_words = sum(len(d) for d in slice_gold)
    batches = [slice_gold[i : i + nlp.batch_size] for i in range(0, len(slice_gold), nlp.batch_size)]
    get_spans = transformer.model.attrs["get_spans"]
    pieces = []
    for batch in batches:
        docs = fresh_copies(nlp.vocab, batch)
        spans = [s for doc_spans in get_spans(docs) for s in doc_spans if len(s)]
        wp, _ = tokenize_spans(shim.tokenizer, spans, shim.settings.max_length, shim.pad_id)
        pieces.append((torch.as_tensor(wp.input_ids), torch.as_tensor(wp.attention_mask).bool()))
    pipe_times, strict_times = [], []
    for _ in range(args.repeats):
        inputs = fresh_copies(nlp.vocab, slice_gold)
        t = time.perf_counter()
        list(nlp.pipe(inputs))
        pipe_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.inference_mode():
            for ids, mask in pieces:
                shim._model(ids, mask)
        strict_times.append(time.perf_counter() - t)
    return {
        "pipeline": pipeline_name(args.pipeline), "setting": args.setting, "load_s": load_s,
        "layers": len(shim._model.backbone.layers),
        "test_words": words, "test_words_per_s": words / pipe_s, "test_s": pipe_s,
        "test": {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"]},
        "slice_words": slice_words,
        "slice_words_per_s": slice_words / median(pipe_times),
        "strict_words_per_s": slice_words / median(strict_times),
        "rss_loaded_mb": rss_loaded / 1024,  # the peak, up to the end of loading
        "rss_after_load_mb": rss_after_load,  # what stays: the model and the libraries
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def table(rows) -> str:
    base = rows[0]
    lines = [
        "| pipeline | setting | layers | words/s, whole test set | x float32 | vs its strict limit | test F1 | ΔF1 | load s | peak RSS MB | RSS after load MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pipeline']} | {r['setting']} | {r['layers']} | {r['test_words_per_s']:.0f} | {r['test_words_per_s'] / base['test_words_per_s']:.2f} | "
            f"{r['slice_words_per_s'] / r['strict_words_per_s']:.2f} | {100 * r['test']['f']:.2f} | "
            f"{100 * (r['test']['f'] - base['test']['f']):+.2f} | {r['load_s']:.1f} | {r['peak_rss_mb']:,.0f} | "
            f"{r.get('rss_after_load_mb', float('nan')):,.0f} |"
        )
    return "\n".join(lines)


def run_setting(script: str, setting: str, args: list) -> dict:
    """`script --setting SETTING ARGS...` in a process of its own (its memory is its own):
    the JSON of its last line."""
    run = subprocess.run([sys.executable, script, *args, "--setting", setting], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{setting} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipelines", nargs="+")
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", help="OUT.json and OUT.md (the parent run)")
    ap.add_argument("--settings", default="float32,int8,layer20,int8+layer20")
    ap.add_argument("--setting", help=argparse.SUPPRESS)  # one setting, in a child process
    ap.add_argument("--speed-docs", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.setting:
        args.pipeline, = args.pipelines
        print(json.dumps(measure(args)))
        return
    rows = []
    for pipeline in args.pipelines:
        for setting in args.settings.split(","):
            rows.append(run_setting(__file__, setting, [pipeline, "--test", args.test, "--speed-docs", str(args.speed_docs),
                                                        "--repeats", str(args.repeats)]))
            r = rows[-1]
            print(f"{r['pipeline']} {setting}: {r['test_words_per_s']:.0f} words/s, F1 {100 * r['test']['f']:.2f}, "
                  f"load {r['load_s']:.1f} s", flush=True)
    result = {"pipelines": args.pipelines, "test": args.test, "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
              "date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", "scripts/inference_settings.py", *(argv or sys.argv[1:])]),
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
