"""results/*.json (measure.py) -> results/tables.md, the tables the README quotes.

    .venv/bin/python experiments/confidence/report.py
"""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def pct(x):
    return "–" if x != x else f"{100 * x:.1f}"  # NaN: no entity reached the threshold


def setting_name(s):
    return s.get("decoder") or f"width {s['beam_width']}, density {s['beam_density']:g}"


def settings_table(r):
    lines = [f"Decoding settings of `{r['name']}` (raw scores of doc.ents; the calibrator is fitted for the chosen one):", "",
             "| decoding | test F1 | dev AUROC | test AUROC | test ECE | test Brier | distinct scores (test) | share > 0.999 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in r["settings"]:
        mark = " (chosen)" if setting_name(s) == setting_name(r["chosen"]) else ""
        t = s["test"]
        lines.append(f"| {setting_name(s)}{mark} | {pct(t['prf']['f'])} | {s['dev']['auroc']:.3f} | "
                     f"{t['auroc']:.3f} | {t['ece']:.4f} | {t['brier']:.4f} | {t['distinct_scores']:,} | {t['share_above_0.999']:.2f} |")
    return lines


def calibration_rows(r):
    rows = []
    for key, label in (("test_raw", "raw score"), ("test_isotonic", "isotonic (calibrate's default)"), ("test_platt", "Platt"),
                       ("test_isotonic_seen", "isotonic, seen in training or not"), ("test_platt_seen", "Platt, seen in training or not")):
        if key not in r:
            continue
        s = r[key]
        label += " (the recipe)" if r.get("recipe") == key else ""
        kept = {k["threshold"]: k for k in s["kept"]}
        rows.append(f"| {r['name']} | {label} | {s['ece']:.4f} | {s['brier']:.4f} | {s['auroc']:.3f} | "
                    f"{pct(kept[0.9]['precision'])} / {pct(kept[0.9]['share'])} | {pct(kept[0.99]['precision'])} / {pct(kept[0.99]['share'])} |")
    c = r["test_isotonic"]["constant"]
    rows.append(f"| {r['name']} | constant {c['value']:.3f} (dev precision) | {c['ece']:.4f} | {c['brier']:.4f} | {c['auroc']:.3f} | – | – |")
    return rows


def main():
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    out = ["<!-- written by experiments/confidence/report.py from results/*.json -->", "",
           "Test entities of doc.ents (exact span and label right or wrong), calibrator fitted on dev_calibrate:", "",
           "| run | score | ECE (15 equal-mass bins) | Brier | AUROC | ≥ 0.9: precision / share kept | ≥ 0.99: precision / share kept |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        out += calibration_rows(r)
    out += ["", "| run | test P | test R | test F1 | test F1, the same weights decoded greedily | entities scored | "
            "words/s with scores | scores off | greedy decoding | scores cost |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        g = r.get("greedy_decoding_prf")
        greedy_f = pct(g["test"]["f"]) if g else "–"
        if "speed" not in r:
            out.append(f"| {r['name']} | {pct(r['test_prf']['p'])} | {pct(r['test_prf']['r'])} | {pct(r['test_prf']['f'])} | {greedy_f} | "
                       f"{r['test_raw']['n']:,} | – | – | – | – |")
            continue
        sp = r["speed"]
        w, off, greedy = (sp[k]["words_per_s"] if k in sp else None for k in ("with scores", "beam, scores off", "greedy decoding"))
        cost = f"{100 * (1 - w / off):.1f}%" if off else "–"
        out.append(f"| {r['name']} | {pct(r['test_prf']['p'])} | {pct(r['test_prf']['r'])} | {pct(r['test_prf']['f'])} | {greedy_f} | "
                   f"{r['test_raw']['n']:,} | {w:.0f} | {f'{off:.0f}' if off else '–'} | {f'{greedy:.0f}' if greedy else '–'} | {cost} |")
    for r in runs:
        out += [""] + settings_table(r)
    (RESULTS / "tables.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
