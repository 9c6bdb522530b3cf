"""python -m spacy llama-ner calibrate PIPELINE DEV.spacy OUTPUT

Fit the calibrator of a scored pipeline's entity probabilities on annotated dev docs
(never the test set) and save the pipeline with it to OUTPUT. The pipeline runs over
fresh copies of the dev docs; each entity of doc.ents is right when its exact span and
label are gold. What is fitted maps the model's raw score (the beam's marginal, or
spancat's probability) to that chance of being right; `ent._.score` then gives the
calibrated value and `ent._.raw_score` the raw one. With --train (the training data), it
fits one curve for entities whose text and label occur in the training data and one for
the rest (calibrator.py says why).
"""
import argparse
from pathlib import Path

from wasabi import msg

from .calibrator import METHODS, Calibrator, training_entities
from .component import ScoredEntityRecognizer, check_beam
from .measures import entity_outcomes, summary
from .spans import EntityScoresUnavailable, ScoresConfigError, require_scores


def load_gold_docs(path: Path, vocab, role: str = "dev"):
    from spacy.tokens import DocBin

    if not path.is_file():
        msg.fail(f"{role} data not found: {path.resolve()} (a .spacy DocBin, e.g. from `python -m spacy llama-ner convert-conll`)", exits=1)
    try:
        docs = list(DocBin().from_disk(path).get_docs(vocab))
    except Exception as err:  # a damaged or foreign file: say which one
        msg.fail(f"{path}: not a readable .spacy DocBin ({type(err).__name__}: {err})", exits=1)
    if not any(doc.ents for doc in docs):
        msg.fail(f"{path}: {len(docs)} docs and no gold entities: calibration needs annotated {role} data", exits=1)
    return docs


def scored_pipe(nlp):
    """(name, component) of the pipeline's component that writes entity scores."""
    return next((name, pipe) for name, pipe in nlp.pipeline if getattr(pipe, "writes_entity_scores", False))


def set_decoding(nlp, decoding: dict) -> None:
    """Set beam_width / beam_density on the scored beam, checked, where saving keeps
    them: the parser's own cfg (which a saved pipeline reads back over config.cfg's) and
    the pipeline's config."""
    if not decoding:
        return
    name, pipe = scored_pipe(nlp)
    if not isinstance(pipe, ScoredEntityRecognizer):
        factory = nlp.get_pipe_meta(name).factory
        raise ScoresConfigError(f"components.{name}", "--beam-width and --beam-density set a beam search, which "
                                "this component does not use: leave them out", factory)
    check_beam(decoding.get("beam_width", pipe.cfg["beam_width"]), decoding.get("beam_density", pipe.cfg["beam_density"]), name)
    pipe.cfg.update(decoding)
    nlp.get_pipe_config(name).update(decoding)


def decoding_info(nlp) -> dict:
    """How the scored entities were decoded: the beam's settings, or the span classifier."""
    name, pipe = scored_pipe(nlp)
    if isinstance(pipe, ScoredEntityRecognizer):
        return {"beam_width": pipe.cfg["beam_width"], "beam_density": pipe.cfg["beam_density"]}
    return {"decoder": nlp.get_pipe_meta(name).factory}


def main(argv=None, prog: str = "python -m spacy llama-ner calibrate") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.strip().split("\n")[2])
    ap.add_argument("pipeline", type=Path, help="a trained pipeline with entity scores (configs/ner_beam.cfg or ner_spancat.cfg)")
    ap.add_argument("dev", type=Path, help="annotated dev docs (.spacy) to fit on: not the test set")
    ap.add_argument("output", type=Path, help="where the pipeline with its calibrator is saved (may be PIPELINE)")
    ap.add_argument("--method", default="isotonic", choices=METHODS,
                    help="isotonic regression on the score (default) or Platt scaling on its logit")
    ap.add_argument("--train", type=Path, default=None,
                    help="the training data (.spacy): one curve for entities whose text and label occur in it, "
                         "one for the rest (the study: with --method platt); its entity texts are saved in OUTPUT")
    ap.add_argument("--beam-width", type=int, default=None,
                    help="scored_beam_ner only: decode with this beam width (>= 2) from now on; saved in OUTPUT (the study: 64)")
    ap.add_argument("--beam-density", type=float, default=None,
                    help="scored_beam_ner only: and this beam_density in [0, 1); saved in OUTPUT (the study: 0)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--gpu-id", type=int, default=-1)
    args = ap.parse_args(argv)

    import spacy
    from tqdm import tqdm

    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    if not (args.pipeline / "config.cfg").is_file():
        msg.fail(f"no spaCy pipeline at {args.pipeline.resolve()} (it has no config.cfg)", exits=1)
    decoding = {k: v for k, v in (("beam_width", args.beam_width), ("beam_density", args.beam_density)) if v is not None}
    nlp = spacy.load(args.pipeline)
    try:
        require_scores(nlp)
        set_decoding(nlp, decoding)
    except (EntityScoresUnavailable, ScoresConfigError) as err:
        msg.fail(str(err), exits=1)
    gold = load_gold_docs(args.dev, nlp.vocab)
    seen = None
    if args.train is not None:
        seen = training_entities(load_gold_docs(args.train, nlp.vocab, "training"))
    with tqdm(total=len(gold), desc=f"Scoring {args.dev.name}", unit="doc") as bar:
        out = entity_outcomes(nlp, gold, args.batch_size, progress=lambda n: bar.update(n - bar.n))
    try:
        calibrator = Calibrator.fit(out.raw, out.correct, args.method, info={
            "dev": str(args.dev), "docs": out.n_docs, "entities": int(len(out.raw)),
            "dev_precision": out.precision, "dev_f1": out.prf["f"],
            **({"train": str(args.train), "training_entities": len(seen)} if seen is not None else {}),
            **decoding_info(nlp),
        }, entities=out.entities, training_entities=seen)
    except ValueError as err:
        msg.fail(f"{args.dev}: {err}", exits=1)
    for name, pipe in nlp.pipeline:
        if getattr(pipe, "writes_entity_scores", False):
            pipe.calibrator = calibrator
    before = summary(out.raw, out.correct, out.precision)
    after = summary(calibrator.apply(out.raw, out.entities), out.correct, out.precision)
    nlp.to_disk(args.output)
    msg.good(f"Calibrator ({args.method}) fitted on {len(out.raw)} entities of {out.n_docs} docs of {args.dev} "
             f"(precision {out.precision:.3f}, F1 {out.prf['f']:.3f}); pipeline saved to {args.output}")
    msg.text(f"On the same dev data (in-sample): ECE {before['ece']:.4f} -> {after['ece']:.4f}, "
             f"Brier {before['brier']:.4f} -> {after['brier']:.4f}, AUROC {before['auroc']:.3f} -> {after['auroc']:.3f}; "
             "judge it on held-out data (experiments/confidence/).")
    if seen is not None:
        mask = calibrator.seen(out.entities)
        msg.text(f"{mask.mean():.0%} of the dev entities have a text and label found in {args.train} ({len(seen):,} "
                 f"distinct): {out.correct[mask].mean():.1%} of those are right, {out.correct[~mask].mean():.1%} of the rest")
        for group in calibrator.info.get("pooled", []):
            n = int(mask.sum() if group == "seen" else (~mask).sum())
            msg.warn(f"The {n} dev entities {'seen' if group == 'seen' else 'not seen'} in training are not both right and "
                     "wrong ones: they are scored with the curve of all dev entities (a larger dev set fits them on their own)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
