"""Show where pipelines disagree: test sentences with gold and each pipeline's entities,
one above the other (displaCy), and each pipeline's errors counted by kind.

    python scripts/visualize.py GOLD.spacy OUTPUT.html NAME=PIPELINE NAME=PIPELINE ...
        [--examples 12] [--png OUTPUT.png] [--summary OUTPUT.md]

Every pipeline annotates the gold Docs' own tokens (as `spacy evaluate` does). A
sentence is shown when the pipelines' entities differ; the examples are spread over
"only NAME is right" for each pipeline and "none is right", shorter sentences first.
Under each pipeline's row its errors are named: a missed entity, a spurious one, a
wrong type, a wrong boundary. `--png` also takes a screenshot of the page with a
headless Chromium (Debian's `chromium` package); `--summary` writes the error counts
alone as a Markdown table.
"""
import argparse
import html
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, Set, Tuple

import spacy
from spacy import displacy
from spacy.tokens import Doc, DocBin

Entity = Tuple[int, int, str]  # start_char, end_char, label
KINDS = ("correct", "wrong type", "wrong boundary", "missed", "spurious")


def entities(doc: Doc) -> Set[Entity]:
    return {(e.start_char, e.end_char, e.label_) for e in doc.ents}


def errors(gold: Set[Entity], predicted: Set[Entity], text: str) -> List[Tuple[str, str]]:
    """(kind, description) for each gold entity and each spurious prediction."""
    found = []
    for start, end, label in sorted(gold):
        overlapping = [p for p in predicted if p[0] < end and start < p[1]]
        if (start, end, label) in predicted:
            found.append(("correct", ""))
        elif any(p[:2] == (start, end) for p in overlapping):
            other = next(p[2] for p in overlapping if p[:2] == (start, end))
            found.append(("wrong type", f"{text[start:end]!r} {label} as {other}"))
        elif overlapping:
            shown = ", ".join(repr(text[p[0] : p[1]]) for p in sorted(overlapping))
            found.append(("wrong boundary", f"{text[start:end]!r} {label} as {shown}"))
        else:
            found.append(("missed", f"{text[start:end]!r} {label}"))
    for start, end, label in sorted(predicted):
        if not any(g[0] < end and start < g[1] for g in gold):
            found.append(("spurious", f"{text[start:end]!r} as {label}"))
    return found


def annotate(pipeline: str, gold_docs: List[Doc]) -> List[Set[Entity]]:
    nlp = spacy.load(pipeline)
    fresh = (Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold_docs)
    return [entities(doc) for doc in nlp.pipe(fresh, batch_size=64)]


def pick_examples(gold: List[Set[Entity]], predictions: Dict[str, List[Set[Entity]]], lengths: List[int], count: int):
    """Indices of sentences where the pipelines disagree, spread over who is right."""
    names = list(predictions)
    buckets: Dict[str, List[int]] = {f"only {n} right": [] for n in names}
    buckets["none right"] = []
    for i in sorted(range(len(gold)), key=lambda i: (lengths[i] > 40, i)):
        sets = [predictions[n][i] for n in names]
        if all(s == sets[0] for s in sets):
            continue
        right = [n for n in names if predictions[n][i] == gold[i]]
        if len(right) == 1:
            buckets[f"only {right[0]} right"].append(i)
        elif not right:
            buckets["none right"].append(i)
    chosen: List[Tuple[str, int]] = []
    while len(chosen) < count and any(buckets.values()):
        for bucket, indices in buckets.items():
            if indices and len(chosen) < count:
                chosen.append((bucket, indices.pop(0)))
    return chosen


def render_row(doc: Doc, ents: Set[Entity]) -> str:
    data = {"text": doc.text, "ents": [{"start": s, "end": e, "label": lab} for s, e, lab in sorted(ents)], "title": None}
    return displacy.render(data, style="ent", manual=True, page=False, jupyter=False)


def error_counts(gold_docs, gold, predictions) -> Dict[str, Counter]:
    totals = {name: Counter() for name in predictions}
    for i, doc in enumerate(gold_docs):
        for name in predictions:
            totals[name].update(kind for kind, _ in errors(gold[i], predictions[name][i], doc.text))
    return totals


def summary_table(totals: Dict[str, Counter], sentences: int, disagree: int) -> str:
    lines = [
        f"{sentences:,} sentences; the pipelines' entities differ in {disagree:,}. Gold entities by how each "
        "pipeline did, and its spurious entities:",
        "",
        "| pipeline | " + " | ".join(KINDS) + " |",
        "|---|" + "---:|" * len(KINDS),
    ]
    lines += [f"| {name} | " + " | ".join(f"{counts[k]:,}" for k in KINDS) + " |" for name, counts in totals.items()]
    return "\n".join(lines) + "\n"


def count_disagreements(predictions) -> int:
    columns = list(zip(*predictions.values()))
    return sum(any(s != sets[0] for s in sets) for sets in columns)


def build_page(gold_docs, gold, predictions, chosen) -> str:
    totals = error_counts(gold_docs, gold, predictions)
    disagree = count_disagreements(predictions)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in KINDS)
    rows = "".join(
        f"<tr><th>{html.escape(n)}</th>" + "".join(f"<td>{totals[n][k]:,}</td>" for k in KINDS) + "</tr>"
        for n in predictions
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Where the pipelines disagree</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:20px auto;color:#222}"
        "table{border-collapse:collapse;margin-bottom:10px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        ".ex{border-top:2px solid #888;padding:8px 0}.row{display:flex;align-items:baseline}"
        ".who{width:130px;flex:none;font-weight:bold}.errs{margin:0 0 6px 130px;font-size:13px;color:#a00}"
        ".ok{color:#070}.bucket{font-size:13px;color:#555}</style></head><body>",
        f"<h2>Where the pipelines disagree</h2><p>{len(gold_docs):,} sentences; the pipelines' entities differ in "
        f"{disagree:,}. Gold entities by how each pipeline did, and its spurious entities:</p>",
        f"<table><tr><th></th>{head}</tr>{rows}</table>",
    ]
    for bucket, i in chosen:
        doc = gold_docs[i]
        parts.append(f"<div class='ex'><div class='bucket'>sentence {i + 1} &middot; {html.escape(bucket)}</div>")
        parts.append(f"<div class='row'><div class='who'>gold</div>{render_row(doc, gold[i])}</div>")
        for name, preds in predictions.items():
            wrong = [f"{k}: {d}" for k, d in errors(gold[i], preds[i], doc.text) if k != "correct"]
            parts.append(f"<div class='row'><div class='who'>{html.escape(name)}</div>{render_row(doc, preds[i])}</div>")
            note = "; ".join(html.escape(w) for w in wrong) if wrong else "<span class='ok'>all right</span>"
            parts.append(f"<div class='errs'>{note}</div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def screenshot(page: Path, png: Path, width: int = 1200) -> None:
    """A PNG of the whole page from headless Chromium, cut below the last content."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("--png needs Chromium: apt-get install chromium (Debian), or leave --png out")
    from PIL import Image, ImageChops

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--window-size={width},12000", f"--screenshot={png.resolve()}", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    image = Image.open(png).convert("RGB")
    box = ImageChops.difference(image, Image.new("RGB", image.size, (255, 255, 255))).getbbox()
    if box:
        image.crop((0, 0, width, min(image.height, box[3] + 20))).save(png, optimize=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("gold", type=Path, help="the test set as .spacy (corpus/full/test.spacy)")
    p.add_argument("output", type=Path, help="the HTML page to write")
    p.add_argument("pipelines", nargs="+", help="NAME=PIPELINE_DIR, two or more")
    p.add_argument("--examples", type=int, default=12, help="sentences to show (default: 12)")
    p.add_argument("--png", type=Path, default=None, help="also a screenshot of the page (needs Chromium)")
    p.add_argument("--summary", type=Path, default=None, help="also the error counts as a Markdown table")
    args = p.parse_args(argv)
    pairs = [spec.split("=", 1) for spec in args.pipelines]
    if len(pairs) < 2 or any(len(pair) != 2 or not pair[0] for pair in pairs):
        p.error(f"give two or more pipelines as NAME=PIPELINE_DIR, got: {' '.join(args.pipelines)}")
    for _, path in pairs:
        if not Path(path).exists():
            p.error(f"pipeline not found: {path}")
    if not args.gold.exists():
        p.error(f"gold file not found: {args.gold}")
    gold_docs = list(DocBin().from_disk(args.gold).get_docs(spacy.blank("en").vocab))
    gold = [entities(d) for d in gold_docs]
    predictions = {name: annotate(path, gold_docs) for name, path in pairs}
    chosen = pick_examples(gold, predictions, [len(d) for d in gold_docs], args.examples)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(build_page(gold_docs, gold, predictions, chosen), encoding="utf-8")
    print(f"Wrote {args.output}: {len(chosen)} sentences where the pipelines disagree")
    if args.summary:
        totals = error_counts(gold_docs, gold, predictions)
        args.summary.write_text(summary_table(totals, len(gold_docs), count_disagreements(predictions)), encoding="utf-8")
        print(f"Wrote {args.summary}")
    if args.png:
        screenshot(args.output, args.png)
        print(f"Wrote {args.png}")


if __name__ == "__main__":
    main()
