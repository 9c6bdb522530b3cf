"""Measure a scored pipeline's entity probabilities (experiments/confidence/README.md).

  .venv/bin/python experiments/confidence/measure.py PIPELINE --dev DEV.spacy --test TEST.spacy --out results/NAME.json

PIPELINE is a trained configs/ner_beam.cfg or configs/ner_spancat.cfg pipeline
(uncalibrated: the calibrator is fitted here, on --dev, never on --test). The decoder runs
once over fresh, unannotated copies of the dev and test docs; each decoding setting (beam
width x beam_density; spancat has one) then runs the components after the transformer on
new fresh copies that carry the decoder output, so no setting sees another one's
entities. Per setting: entity P/R/F1 and, for the raw scores of doc.ents,
ECE, Brier and AUROC on dev and test. The setting with the best dev AUROC gets its
calibrators fitted on dev (isotonic and Platt; with --train, each also with one curve for
entities seen in the training data and one for the rest); on test the recipe's
calibrated scores are measured against a constant score equal to dev precision (ECE, Brier, AUROC, precision and share kept at >= 0.5/0.9/0.99), with a
reliability diagram per label (bootstrap intervals over documents). For the beam, also
the F1 of the same weights decoded greedily. Speed: whole-pipeline
words/s on a test slice with scores and, for the beam, with the component's scores
switched off, and greedy.
"""
import argparse
import datetime
import json
import platform
import time
import types
from pathlib import Path

import numpy
import spacy
from spacy.pipeline import EntityRecognizer
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_llama_ner.confidence import Calibrator, ScoredEntityRecognizer
from spacy_llama_ner.confidence.calibrator import training_entities
from spacy_llama_ner.confidence.measures import fresh_copies, outcomes_of, reliability, summary

HERE = Path(__file__).resolve().parent
WIDTHS = (4, 8, 16, 32, 64)  # at width 16 the NER took 2 s of the test set's 120: wider beams are cheap
DENSITIES = (0.0001, 0.0)
THRESHOLDS = (0.5, 0.9, 0.99)
RECIPES = {"test_isotonic": "isotonic", "test_platt_seen": "Platt, seen in training or not"}


def read(vocab, path):
    return list(DocBin().from_disk(path).get_docs(vocab))


def decode(nlp, gold, batch_size):
    """The decoder's output on fresh copies of gold, and the seconds it took."""
    start = time.perf_counter()
    docs = list(nlp.get_pipe("transformer").pipe(fresh_copies(nlp.vocab, gold), batch_size=batch_size))
    return docs, time.perf_counter() - start


def run_ner(nlp, decoded, batch_size):
    """The components after the transformer (the NER; or spancat and the component that
    writes its spans to doc.ents) over new fresh copies that carry the decoder output."""
    copies = []
    for doc in decoded:
        copy = Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        copy._.trf_data = doc._.trf_data
        copies.append(copy)
    start = time.perf_counter()
    docs = iter(copies)
    for name, component in nlp.pipeline:
        if name != "transformer":
            docs = component.pipe(docs, batch_size=batch_size)
    out = list(docs)
    return out, time.perf_counter() - start


def set_decoding(ner, width: int, scores: bool) -> None:
    """The scored beam at `width` (1: greedy), with its scores or as plain spaCy NER."""
    ner.cfg["beam_width"] = width
    if scores:
        ner.__dict__.pop("set_annotations", None)
    else:
        ner.set_annotations = types.MethodType(EntityRecognizer.set_annotations, ner)


def greedy_prf(nlp, decoded, gold, batch_size):
    """Entity P/R/F1 of the same weights decoded greedily (beam width 1, no scores): what
    the beam's decoding itself costs or gains."""
    ner = nlp.get_pipe("ner")
    width = ner.cfg["beam_width"]
    set_decoding(ner, 1, scores=False)
    try:
        docs, _ = run_ner(nlp, decoded, batch_size)
    finally:
        set_decoding(ner, width, scores=True)
    prf = Scorer.score_spans([Example(d, g) for d, g in zip(docs, gold)], "ents")
    return {"p": prf["ents_p"], "r": prf["ents_r"], "f": prf["ents_f"]}


def decoding_settings(ner):
    """The beam's widths x densities, or spancat's one way to decode."""
    if isinstance(ner, ScoredEntityRecognizer):
        return [{"beam_width": w, "beam_density": d} for w in WIDTHS for d in DENSITIES]
    return [{"decoder": "spancat"}]


def setting_name(setting) -> str:
    return setting.get("decoder") or f"width {setting['beam_width']} density {setting['beam_density']}"


def raw_block(out):
    s = summary(out.raw, out.correct, out.precision, THRESHOLDS)
    return {"prf": out.prf, "ece": s["ece"], "brier": s["brier"], "auroc": s["auroc"], "n": s["n"],
            "distinct_scores": int(len(numpy.unique(numpy.round(out.raw, 6)))),
            "share_above_0.999": float((out.raw > 0.999).mean()) if len(out.raw) else float("nan")}


def words_per_second(nlp, texts, batch_size, repeats):
    """Median whole-pipeline words/s over `repeats` runs of nlp.pipe, per setting, the
    settings interleaved so that machine noise hits them alike. spancat's scores come
    with its decoding: it has the one setting."""
    ner = nlp.get_pipe("ner")
    if isinstance(ner, ScoredEntityRecognizer):
        width = ner.cfg["beam_width"]
        settings = {
            "with scores": lambda: set_decoding(ner, width, scores=True),
            "beam, scores off": lambda: set_decoding(ner, width, scores=False),
            "greedy decoding": lambda: set_decoding(ner, 1, scores=False),
        }
    else:
        settings = {"with scores": lambda: None}
    words = sum(len(t.split()) for t in texts)
    times = {name: [] for name in settings}
    list(nlp.pipe(texts[:50], batch_size=batch_size))  # warm-up
    for _ in range(repeats):
        for name, apply in settings.items():
            apply()
            start = time.perf_counter()
            list(nlp.pipe(texts, batch_size=batch_size))
            times[name].append(time.perf_counter() - start)
    settings["with scores"]()
    return {name: {"words_per_s": words / float(numpy.median(t)), "seconds": t} for name, t in times.items()} | {"words": words}


def plot_reliability(per_label, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(per_label), figsize=(3.2 * len(per_label), 3.4), sharey=True)
    for ax, (label, rows) in zip(numpy.atleast_1d(axes), per_label.items()):
        x = [r["score"] for r in rows]
        y = [r["accuracy"] for r in rows]
        err = [[r["accuracy"] - r["low"] for r in rows], [r["high"] - r["accuracy"] for r in rows]]
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.errorbar(x, y, yerr=err, fmt="o-", ms=3, capsize=2)
        ax.set_title(f"{label} (n={sum(r['n'] for r in rows):,})")
        ax.set_xlabel("ent._.score (bin mean)")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
    numpy.atleast_1d(axes)[0].set_ylabel("share exactly right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("--dev", required=True, help="annotated docs the calibrator is fitted on (not test)")
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", required=True, help="results JSON; the reliability PNG goes beside it")
    ap.add_argument("--name", default=None, help="what the run is called in the report")
    ap.add_argument("--speed-docs", type=int, default=500, help="test docs in the speed runs")
    ap.add_argument("--repeats", type=int, default=3, help="speed runs per setting (0: none)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--command", default="", help="the command that produced this, for the record")
    ap.add_argument("--train", default=None,
                    help="the pipeline's training data (.spacy): also fit the calibrators with one curve for entities "
                         "whose text and label occur in it and one for the rest (`calibrate --train`); the recipe is then "
                         "Platt with them, else isotonic")
    ap.add_argument("--outcomes", default=None,
                    help="also save the chosen setting's per-entity dev and test outcomes here (.npz: raw score, "
                         "right or wrong, label, doc), to study other calibrators without decoding again")
    args = ap.parse_args(argv)

    nlp = spacy.load(args.pipeline)
    ner = nlp.get_pipe("ner")
    beam = isinstance(ner, ScoredEntityRecognizer)
    configured = {"beam_width": ner.cfg["beam_width"], "beam_density": ner.cfg["beam_density"]} if beam else {"decoder": "spancat"}
    dev_gold, test_gold = read(nlp.vocab, args.dev), read(nlp.vocab, args.test)
    dev_decoded, _ = decode(nlp, dev_gold, args.batch_size)
    test_decoded, trf_s = decode(nlp, test_gold, args.batch_size)
    print(f"decoder: {len(test_gold)} test docs in {trf_s:.0f} s", flush=True)

    settings, raw_outcomes = [], {}
    for setting in decoding_settings(ner):
        if beam:
            ner.cfg.update(setting)
        dev_docs, _ = run_ner(nlp, dev_decoded, args.batch_size)
        test_docs, ner_s = run_ner(nlp, test_decoded, args.batch_size)
        dev_out, test_out = outcomes_of(dev_docs, dev_gold), outcomes_of(test_docs, test_gold)
        raw_outcomes[setting_name(setting)] = (dev_out, test_out)
        row = {**setting, "ner_s": ner_s, "dev": raw_block(dev_out), "test": raw_block(test_out)}
        settings.append(row)
        print(f"{setting_name(setting)}: test F1 {test_out.prf['f']:.4f}, raw AUROC dev "
              f"{row['dev']['auroc']:.3f} test {row['test']['auroc']:.3f}", flush=True)

    greedy = None
    if beam:
        greedy = {"dev": greedy_prf(nlp, dev_decoded, dev_gold, args.batch_size),
                  "test": greedy_prf(nlp, test_decoded, test_gold, args.batch_size)}
        print(f"greedy decoding of the same weights: test F1 {greedy['test']['f']:.4f}", flush=True)

    best = max(settings, key=lambda r: (r["dev"]["auroc"], r["dev"]["prf"]["f"]))
    chosen = {k: best[k] for k in ("beam_width", "beam_density", "decoder") if k in best}
    dev_out, test_out = raw_outcomes[setting_name(chosen)]
    seen = None
    if args.train:
        seen = training_entities(read(nlp.vocab, args.train))
    if args.outcomes:
        fields = {f"{part}_{field}": numpy.asarray(getattr(o, field)) for part, o in (("dev", dev_out), ("test", test_out))
                  for field in ("raw", "correct", "labels", "texts", "doc_index")}
        if seen is not None:
            fields |= {f"{part}_seen": numpy.asarray([e in seen for e in o.entities], dtype=float)
                       for part, o in (("dev", dev_out), ("test", test_out))}
        numpy.savez(args.outcomes, **fields)
    fitted = {"test_isotonic": Calibrator.fit(dev_out.raw, dev_out.correct, "isotonic"),
              "test_platt": Calibrator.fit(dev_out.raw, dev_out.correct, "platt")}
    if seen is not None:
        for method in ("isotonic", "platt"):
            fitted[f"test_{method}_seen"] = Calibrator.fit(dev_out.raw, dev_out.correct, method,
                                                           entities=dev_out.entities, training_entities=seen)
    recipe = "test_platt_seen" if seen is not None else "test_isotonic"
    calibrator = fitted[recipe]
    calibrated = calibrator.apply(test_out.raw, test_out.entities).astype("float64")
    result = {
        "name": args.name or Path(args.pipeline).parent.name,
        "pipeline": args.pipeline, "dev": args.dev, "test": args.test, "command": args.command,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        "configured": configured,
        "decoder_s_test": trf_s, "test_words": sum(len(d) for d in test_gold),
        "settings": settings,
        "chosen": {**chosen, "rule": "best dev AUROC of the raw scores, then dev F1"},
        "dev_precision": dev_out.precision,
        "test_raw": summary(test_out.raw, test_out.correct, dev_out.precision, THRESHOLDS),
        **{key: summary(c.apply(test_out.raw, test_out.entities).astype("float64"), test_out.correct, dev_out.precision, THRESHOLDS)
           for key, c in fitted.items()},
        "recipe": recipe,
        "train": args.train,
        "test_seen_share": float(calibrator.seen(test_out.entities).mean()) if seen is not None else None,
        "dev_seen_share": float(calibrator.seen(dev_out.entities).mean()) if seen is not None else None,
        "test_prf": test_out.prf,
        "greedy_decoding_prf": greedy,
    }
    labels = sorted(set(test_out.labels))
    lab = numpy.asarray(test_out.labels)
    per_label = {"all": reliability(calibrated, test_out.correct, test_out.doc_index)}
    result["per_label"] = {}
    for label in labels:
        m = lab == label
        per_label[label] = reliability(calibrated[m], test_out.correct[m], test_out.doc_index[m], n_bins=5)
        result["per_label"][label] = summary(calibrated[m], test_out.correct[m], dev_out.precision, THRESHOLDS)
    result["reliability"] = per_label
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_reliability(per_label, out.with_suffix(".png"),
                     f"{result['name']}: calibrated ent._.score on test ({RECIPES[recipe]} fitted on {Path(args.dev).name}); "
                     "95% bootstrap intervals over documents")
    if beam:
        ner.cfg.update(chosen)
    ner.calibrator = calibrator
    if args.repeats:  # 0: no speed runs (a busy machine, or figures taken elsewhere)
        texts = [d.text for d in test_gold[: args.speed_docs]]
        result["speed"] = words_per_second(nlp, texts, args.batch_size, args.repeats)
    out.write_text(json.dumps(result, indent=1))
    s, c = result[recipe], result[recipe]["constant"]
    print(f"chosen {setting_name(chosen)}; test ECE {s['ece']:.4f} Brier {s['brier']:.4f} (constant "
          f"{c['brier']:.4f}) AUROC {s['auroc']:.3f}; kept >= 0.9: {s['kept'][1]}; wrote {out}")


if __name__ == "__main__":
    main()
