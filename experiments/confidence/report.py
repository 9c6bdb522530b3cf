"""Markdown tables from results/confidence.json (pasted into README.md):
  .venv/bin/python experiments/confidence/report.py [results/confidence.json]"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pct(x):
    return "n/a" if x != x else f"{100 * x:.1f}"


def main(path=None):
    r = json.loads(Path(path or HERE / "results" / "confidence.json").read_text())
    w0 = str(r["configured_beam_width"])
    lines = [f"Test: {r['test']['docs']:,} sentences, {r['test']['words']:,} words, {r['test']['entities']:,} entities ({r['test']['path']}).", ""]
    lines += ["| pipeline | decoding | P | R | F1 |", "|---|---|---|---|---|"]
    g = r["f1"]["greedy"]
    lines.append(f"| greedy `ner` | greedy | {pct(g['p'])} | {pct(g['r'])} | {pct(g['f'])} |")
    for w, row in r["f1"]["beam"].items():
        mark = " (configured)" if w == w0 else ""
        lines.append(f"| `beam_ner` | width {w}{mark} | {pct(row['p'])} | {pct(row['r'])} | {pct(row['f'])} |")
    lines += ["", f"Beam (width {w0}) minus greedy: {100 * r['f1_gap_beam_minus_greedy']:+.1f} F1.", ""]

    lines += ["Speed, decoder once then each width's NER on the same docs (whole test set):", ""]
    lines += ["| beam width | transformer s | beam_ner s | ner_confidence s | words/s, no scores | words/s, with scores | same best parse |", "|---|---|---|---|---|---|---|"]
    for w, s in r["speed_decomposed"].items():
        lines.append(
            f"| {w} | {s['transformer_s']:.1f} | {s['ner_s']:.2f} | {s.get('ner_confidence_s', 0):.2f} | "
            f"{s['words_per_s_no_scores']:.0f} | {'' if s['words_per_s_with_scores'] is None else round(s['words_per_s_with_scores'])} | "
            f"{s.get('same_best_parse', '')} |"
        )
    sg = r["speed_greedy"]
    lines += ["", f"Greedy pipeline, whole test set through nlp.pipe: {sg['words_per_s']:.0f} words/s.", ""]
    wp = r["speed_whole_pipeline"]
    lines += [f"Whole pipeline (nlp.pipe) on the first {wp['docs']} test sentences ({wp['words']:,} words), settings in turn:", ""]
    lines += ["| setting | words/s |", "|---|---|"]
    for k, v in wp["by_width"].items():
        label = f"width {k}" if k.isdigit() else k.replace("_", " ")
        if k == "1":
            label += " (no ner_confidence)"
        lines.append(f"| {label} | {v['words_per_s']:.0f} |")

    tf = r["temperature_fit"]
    lines += ["", f"Temperature fitted on {tf['docs']:,} dev sentences: T = {tf['temperature']:.2f} (candidate log loss {tf['nll_t1']:.4f} at T = 1, {tf['nll_fitted']:.4f} fitted).", ""]
    lines += ["| calibration (test, width " + w0 + ") | T = 1 | T fitted |", "|---|---|---|"]
    a, b = r["calibration"]["t1"], r["calibration"]["fitted"]
    lines.append(f"| ECE, all candidates ({a['n_candidates']:,}) | {a['ece_candidates']:.4f} | {b['ece_candidates']:.4f} |")
    lines.append(f"| ECE, best-parse entities ({a['n_best_parse']:,}) | {a['ece_best_parse']:.4f} | {b['ece_best_parse']:.4f} |")
    for pa, pb in zip(a["precision_above"], b["precision_above"]):
        lines.append(f"| precision of candidates above {pa['threshold']} (n) | {pct(pa['precision'])} ({pa['n']:,}) | {pct(pb['precision'])} ({pb['n']:,}) |")
    gb = r["greedy_beam_decoded"]
    lines += ["", f"The greedy-trained model decoded with a beam of {gb['beam_width']} (ner_confidence beam_width set): ECE {gb['ece_candidates']:.4f}; "
              + ", ".join(f"precision above {p['threshold']}: {pct(p['precision'])} ({p['n']:,})" for p in gb["precision_above"]) + "."]
    lines += ["", "ECE by beam width (T = 1, all candidates): " + ", ".join(f"{w}: {e:.4f}" for w, e in r["ece_by_width"].items()) + "."]
    lines += ["", "Precision-recall over the threshold (candidates >= t):", "", "| t | P (T=1) | R (T=1) | F1 (T=1) | P (fitted) | R (fitted) | F1 (fitted) |", "|---|---|---|---|---|---|---|"]
    for ra, rb in zip(a["pr_curve"], b["pr_curve"]):
        if round(ra["threshold"], 2) in (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99):
            lines.append(f"| {ra['threshold']:g} | {pct(ra['precision'])} | {pct(ra['recall'])} | {pct(ra['f1'])} | {pct(rb['precision'])} | {pct(rb['recall'])} | {pct(rb['f1'])} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:])
