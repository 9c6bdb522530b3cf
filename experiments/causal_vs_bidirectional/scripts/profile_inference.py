"""Where CPU inference time goes, per setting (issue 45 item 3).

    python scripts/profile_inference.py PIPELINE --test corpus/full/test.spacy --out docs/profile_inference \
        [--settings float32,int8] [--docs 400]

For each setting (as in inference_settings.py) the pipeline loads in its own process and
runs nlp.pipe over the first --docs test docs twice: once timed stage by stage (the
transformer component: spans, word pieces, the backbone, alignment back to tokens; then
the NER on its output), once under torch.profiler, whose self CPU time per operator is
grouped into linear layers, attention, norms and activations, embeddings and the rest.
Writes OUT.json and OUT.md.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_settings import run_setting, setting_config  # noqa: E402

# torch operator name -> group: the first group with a pattern in the name (attention's
# bmm before the linear layers' mm, their matmul before the norms' mul)
GROUPS = (
    ("attention", ("scaled_dot_product", "softmax", "bmm", "baddbmm", "_efficient_attention", "_flash_attention")),
    ("linear layers", ("linear", "addmm", "mm", "matmul", "quantize_per_tensor", "quantized::")),
    ("norms, activations, rotary", ("rsqrt", "pow", "mean", "silu", "mul", "add", "neg", "cat", "cos", "sin", "div")),
    ("embeddings", ("embedding", "index_select")),
)


def group_of(name: str) -> str:
    lowered = name.lower()
    for group, patterns in GROUPS:
        if any(p in lowered for p in patterns):
            return group
    return "other (copies, masks, reshapes)"


def measure(args) -> dict:
    import spacy
    import torch
    from spacy.tokens import DocBin

    nlp = spacy.load(args.pipeline, config=setting_config(args.setting))
    gold = list(DocBin().from_disk(args.test).get_docs(nlp.vocab))[: args.docs]
    texts = [d.text for d in gold]
    words = sum(len(d) for d in gold)
    transformer, ner = nlp.get_pipe("transformer"), nlp.get_pipe("ner")
    shim = transformer.model.shims[0]
    list(nlp.pipe(texts[:32]))  # warm-up

    # stage by stage: the transformer component (its backbone forward timed inside it by
    # hooks, in the same run), then the NER on its output
    forward_s = []
    handles = [shim._model.register_forward_pre_hook(lambda module, inputs: forward_s.append(-time.perf_counter())),
               shim._model.register_forward_hook(lambda module, inputs, output: forward_s.append(time.perf_counter()))]
    docs = [nlp.make_doc(t) for t in texts]
    start = time.perf_counter()
    docs = list(transformer.pipe(docs, batch_size=nlp.batch_size))
    transformer_s = time.perf_counter() - start
    for handle in handles:
        handle.remove()
    backbone_s = sum(forward_s)
    start = time.perf_counter()
    list(ner.pipe(docs, batch_size=nlp.batch_size))
    ner_s = time.perf_counter() - start

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        list(nlp.pipe(texts))
    groups: dict = {}
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    for event in events:
        groups[group_of(event.key)] = groups.get(group_of(event.key), 0.0) + event.self_cpu_time_total / 1e6
    total = sum(groups.values())
    return {
        "setting": args.setting, "docs": len(texts), "words": words,
        "transformer_s": transformer_s, "backbone_forward_s": backbone_s, "ner_s": ner_s,
        "torch_ops_s": {k: v for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}, "torch_ops_total_s": total,
        "top_ops": [{"op": e.key, "group": group_of(e.key), "self_s": e.self_cpu_time_total / 1e6, "calls": e.count}
                    for e in events[:15]],
        "threads": torch.get_num_threads(),
    }


def table(rows) -> str:
    lines = ["| setting | words/s | backbone forward | spans, word pieces, alignment | NER | top torch operators (share of torch CPU time) |",
             "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        total = r["transformer_s"] + r["ner_s"]
        ops = ", ".join(f"{k} {100 * v / r['torch_ops_total_s']:.0f}%" for k, v in r["torch_ops_s"].items())
        lines.append(
            f"| {r['setting']} | {r['words'] / total:.0f} | {100 * r['backbone_forward_s'] / total:.1f}% | "
            f"{100 * (r['transformer_s'] - r['backbone_forward_s']) / total:.1f}% | {100 * r['ner_s'] / total:.1f}% | {ops} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", help="OUT.json and OUT.md (the parent run)")
    ap.add_argument("--settings", default="float32,int8")
    ap.add_argument("--setting", help=argparse.SUPPRESS)  # one setting, in a child process
    ap.add_argument("--docs", type=int, default=400)
    args = ap.parse_args(argv)
    if args.setting:
        print(json.dumps(measure(args)))
        return
    rows = []
    for setting in args.settings.split(","):
        rows.append(run_setting(__file__, setting, [args.pipeline, "--test", args.test, "--docs", str(args.docs)]))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    result = {"pipeline": args.pipeline, "test": args.test, "date": time.strftime("%Y-%m-%d"),
              "command": " ".join(["python", "scripts/profile_inference.py", *(argv or sys.argv[1:])]), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
