"""Measure the confidence pipeline against the greedy one (experiments/confidence/README.md).

  .venv/bin/python experiments/confidence/measure.py \
      --greedy training/confidence/greedy/model-last --beam training/confidence/beam/model-last

On the test set: entity F1 of the greedy pipeline and of the beam pipeline decoded at
beam widths 1/4/8/16; speed per width (the decoder once, then each width's beam NER and
ner_confidence timed on the same docs; plus whole-pipeline runs on a slice, widths in
turn); calibration of the entity probabilities at the configured width (ECE, reliability
diagram, precision above 0.5/0.9/0.99, precision-recall over the threshold), before and
after a temperature fitted on the dev set. Writes results/confidence.json and two PNGs.
"""
import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy
import spacy
from spacy.tokens import DocBin

from spacy_llama_ner import calibration as cal

HERE = Path(__file__).resolve().parent
WIDTHS = [1, 4, 8, 16]
THRESHOLDS = [0.5, 0.9, 0.99]


def read(nlp, path, limit):
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return docs[:limit] if limit else docs


def prf(pred_sets, gold_sets):
    tp = sum(len(p & g) for p, g in zip(pred_sets, gold_sets))
    n_pred = sum(len(p) for p in pred_sets)
    n_gold = sum(len(g) for g in gold_sets)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0}


def ents(doc):
    return {(e.start, e.end, e.label_) for e in doc.ents}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def calibration_block(parses, gold, temperature):
    scores, correct = cal.outcomes(parses, gold, temperature)
    n_gold = sum(len(g) for g in gold)
    best = []  # the best parse's entities (doc.ents) with their marginals
    for doc_parses, doc_gold in zip(parses, gold):
        if not doc_parses:
            continue
        marg = cal.beam_marginals(doc_parses, temperature)
        top = max(doc_parses, key=lambda item: item[0])[1]
        best.extend((marg.get(e, 0.0), 1.0 if e in doc_gold else 0.0) for e in top)
    best_s = numpy.asarray([s for s, _ in best])
    best_c = numpy.asarray([c for _, c in best])
    return {
        "temperature": temperature,
        "n_candidates": int(len(scores)),
        "ece_candidates": cal.expected_calibration_error(scores, correct),
        "ece_best_parse": cal.expected_calibration_error(best_s, best_c),
        "n_best_parse": int(len(best_s)),
        "reliability_candidates": cal.reliability(scores, correct),
        "reliability_best_parse": cal.reliability(best_s, best_c),
        "precision_above": [cal.precision_above(scores, correct, t) for t in THRESHOLDS],
        "pr_curve": cal.pr_curve(scores, correct, n_gold, [round(x, 3) for x in numpy.linspace(0.01, 0.99, 99)]),
    }


def plot(result, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [("T = 1", result["calibration"]["t1"]), (f"T = {result['calibration']['fitted']['temperature']:.2f} (fitted on dev)", result["calibration"]["fitted"])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, (title, block) in zip(axes, blocks):
        rel = block["reliability_candidates"]
        centers = [(a + b) / 2 for a, b in zip(rel["edges"][:-1], rel["edges"][1:])]
        acc = [a if a is not None else 0 for a in rel["accuracy"]]
        ax.bar(centers, acc, width=0.1, edgecolor="black", alpha=0.7, label="fraction correct")
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        for x, n, a in zip(centers, rel["count"], acc):
            if n:
                ax.text(x, min(a + 0.02, 0.97), str(n), ha="center", fontsize=7)
        ax.set_title(f"{title}: ECE {block['ece_candidates']:.3f}")
        ax.set_xlabel("entity probability (bin)")
        ax.set_ylabel("fraction of candidates that are gold entities")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Reliability of beam_ner entity probabilities, CoNLL-2003 test (counts above bars)")
    fig.tight_layout()
    fig.savefig(out_dir / "reliability.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    for title, block in blocks:
        rows = [r for r in block["pr_curve"] if r["n"]]
        ax.plot([r["recall"] for r in rows], [r["precision"] for r in rows], marker=".", markersize=3, label=f"candidates >= threshold, {title}")
        for r in rows:
            if r["threshold"] in (0.1, 0.5, 0.9):
                ax.annotate(f"{r['threshold']:g}", (r["recall"], r["precision"]), fontsize=7)
    g = result["f1"]["greedy"]
    b = result["f1"]["beam"][str(result["configured_beam_width"])]
    ax.plot([g["r"]], [g["p"]], "ks", label="greedy ner (doc.ents)")
    ax.plot([b["r"]], [b["p"]], "r^", label="beam_ner best parse (doc.ents)")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall over the threshold, CoNLL-2003 test")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "precision_recall.png", dpi=120)
    plt.close(fig)


def measure_greedy(path, test_gold, gold, words, beam_width):
    """F1 and speed of the greedy pipeline; its model decoded with a beam, calibration."""
    greedy = spacy.load(path)
    gdocs, t_greedy = timed(lambda: list(greedy.pipe(cal.gold_words_docs(greedy, test_gold), batch_size=64)))
    part = {"f1": prf([ents(d) for d in gdocs], gold), "speed_greedy": {"seconds": t_greedy, "words_per_s": words / t_greedy}}
    # the greedy-trained model decoded with a beam (components.ner_confidence.beam_width set)
    gconf = greedy.add_pipe("ner_confidence", config={"beam_width": beam_width})
    gparses = [p for i in range(0, len(gdocs), 64) for p in gconf.beam_parses(gdocs[i : i + 64])]
    gs, gc = cal.outcomes(gparses, gold, 1.0)
    part["greedy_beam_decoded"] = {
        "beam_width": beam_width,
        "ece_candidates": cal.expected_calibration_error(gs, gc),
        "precision_above": [cal.precision_above(gs, gc, t) for t in THRESHOLDS],
    }
    return part


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--greedy", required=True, help="a trained pipeline with the greedy ner")
    ap.add_argument("--beam", default=None, help="a trained pipeline from configs/ner_beam.cfg (required unless --only-greedy)")
    ap.add_argument("--dev", default="corpus/full/dev.spacy", help="annotated docs the temperature is fitted on")
    ap.add_argument("--test", default="corpus/full/test.spacy")
    ap.add_argument("--dev-limit", type=int, default=0, help="first N dev docs only (0: all)")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test docs only (0: all)")
    ap.add_argument("--speed-docs", type=int, default=100, help="test docs of the whole-pipeline speed runs")
    ap.add_argument("--speed-rounds", type=int, default=1, help="rounds of the whole-pipeline speed runs")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--command", default=None, help="the command line recorded in the result")
    ap.add_argument("--only-greedy", action="store_true", help="measure the greedy pipeline only, into OUT/greedy.json")
    ap.add_argument("--greedy-from-file", action="store_true", help="take the greedy figures from OUT/greedy.json (--only-greedy)")
    ap.add_argument("--beam-width", type=int, default=8, help="with --only-greedy: the beam the greedy model is decoded with")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": "2-core x86-64 CPU VM, cores shared with other jobs during the run",
        "python": platform.python_version(),
        "spacy": spacy.__version__,
        "command": args.command or " ".join([Path(sys.executable).name] + sys.argv),
        "pipelines": {"greedy": args.greedy, "beam": args.beam},
    }

    if args.only_greedy:
        vocab_nlp = spacy.blank("en")
        test_gold = read(vocab_nlp, args.test, args.test_limit)
        gold = [ents(g) for g in test_gold]
        words = sum(len(g) for g in test_gold)
        part = measure_greedy(args.greedy, test_gold, gold, words, args.beam_width)
        part["test"] = {"path": args.test, "docs": len(test_gold), "words": words, "entities": sum(map(len, gold))}
        (out_dir / "greedy.json").write_text(json.dumps(part, indent=1))
        print(json.dumps(part, indent=1))
        return

    # ---------------------------------------------------------------- beam pipeline
    nlp = spacy.load(args.beam)
    ner = nlp.get_pipe("ner")
    conf = nlp.get_pipe("ner_confidence")
    configured = int(ner.cfg["beam_width"])
    result["configured_beam_width"] = configured
    result["beam_density"] = float(ner.cfg["beam_density"])
    test_gold = read(nlp, args.test, args.test_limit)
    gold = [ents(g) for g in test_gold]
    words = sum(len(g) for g in test_gold)
    result["test"] = {"path": args.test, "docs": len(test_gold), "words": words, "entities": sum(map(len, gold))}
    trf = nlp.get_pipe("transformer")
    docs, t_trf = timed(lambda: list(trf.pipe(cal.gold_words_docs(nlp, test_gold), batch_size=64)))
    f1_beam, speed, parses_by_width = {}, {}, {}
    for width in WIDTHS:
        ner.cfg["beam_width"] = width
        _, t_ner = timed(lambda: list(ner.pipe(docs, batch_size=64)))
        f1_beam[str(width)] = prf([ents(d) for d in docs], gold)
        row = {"transformer_s": t_trf, "ner_s": t_ner}
        if width > 1:
            parses, t_conf = timed(lambda: [p for i in range(0, len(docs), 64) for p in conf.beam_parses(docs[i : i + 64])])
            parses_by_width[width] = parses
            row["ner_confidence_s"] = t_conf
            # the best parse of the second beam search is the one beam_ner set
            row["same_best_parse"] = all(
                set(max(p, key=lambda item: item[0])[1] if p else []) == ents(d) for p, d in zip(parses, docs)
            )
        row["words_per_s_no_scores"] = words / (t_trf + t_ner)
        row["words_per_s_with_scores"] = words / (t_trf + t_ner + row.get("ner_confidence_s", 0.0)) if width > 1 else None
        speed[str(width)] = row
        print(f"width {width}: F1 {f1_beam[str(width)]['f']:.4f}, {row}", flush=True)
    ner.cfg["beam_width"] = configured
    result["f1"] = {"beam": f1_beam}
    result["speed_decomposed"] = speed
    result["ece_by_width"] = {
        str(w): cal.expected_calibration_error(*cal.outcomes(p, gold, 1.0)) for w, p in parses_by_width.items()
    }

    # whole-pipeline runs on a slice, widths in turn (width 1: ner_confidence off)
    slice_docs = test_gold[: args.speed_docs]
    slice_words = sum(len(d) for d in slice_docs)
    whole = {}
    list(nlp.pipe(cal.gold_words_docs(nlp, slice_docs[:16])))  # warm-up
    runs = [(str(w), w, ["ner_confidence"] if w == 1 else []) for w in WIDTHS]
    runs.append((f"{configured}_without_ner_confidence", configured, ["ner_confidence"]))
    for round_ in range(args.speed_rounds):  # rounds interleave the settings; the fastest round counts
        for key, width, disable in runs:
            ner.cfg["beam_width"] = width
            _, t = timed(lambda: list(nlp.pipe(cal.gold_words_docs(nlp, slice_docs), batch_size=64, disable=disable)))
            whole.setdefault(key, {"seconds_per_round": []})["seconds_per_round"].append(t)
    for row in whole.values():
        row["words_per_s"] = slice_words / min(row["seconds_per_round"])
    ner.cfg["beam_width"] = configured
    result["speed_whole_pipeline"] = {"docs": len(slice_docs), "words": slice_words, "by_width": whole}
    print("whole pipeline:", whole, flush=True)

    # calibration at the configured width, temperature fitted on dev
    parses = parses_by_width[configured]
    dev_gold = read(nlp, args.dev, args.dev_limit)
    _, dev_parses, dev_sets = cal.pipeline_parses(nlp, dev_gold)
    temperature, fit = cal.fit_temperature(dev_parses, dev_sets)
    result["temperature_fit"] = {"dev": args.dev, "docs": len(dev_gold), "temperature": temperature, **fit}
    result["calibration"] = {"t1": calibration_block(parses, gold, 1.0), "fitted": calibration_block(parses, gold, temperature)}
    del nlp, docs

    # ---------------------------------------------------------------- greedy pipeline
    greedy_file = out_dir / "greedy.json"
    if args.greedy_from_file and greedy_file.exists():
        part = json.loads(greedy_file.read_text())
        assert part["test"] == result["test"], "greedy.json was measured on other test docs"
    else:
        part = measure_greedy(args.greedy, test_gold, gold, words, configured)
    result["f1"]["greedy"] = part["f1"]
    result["speed_greedy"] = part["speed_greedy"]
    result["greedy_beam_decoded"] = part["greedy_beam_decoded"]
    result["f1_gap_beam_minus_greedy"] = f1_beam[str(configured)]["f"] - result["f1"]["greedy"]["f"]

    (out_dir / "confidence.json").write_text(json.dumps(result, indent=1))
    plot(result, out_dir)
    summary = {
        "f1_greedy": result["f1"]["greedy"]["f"],
        "f1_beam": {w: r["f"] for w, r in f1_beam.items()},
        "temperature": temperature,
        "ece_t1": result["calibration"]["t1"]["ece_candidates"],
        "ece_fitted": result["calibration"]["fitted"]["ece_candidates"],
        "precision_above_t1": result["calibration"]["t1"]["precision_above"],
        "precision_above_fitted": result["calibration"]["fitted"]["precision_above"],
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
