"""Annotate a corpus with a trained pipeline: one command, resumable, on one machine or Ray.

    python -m spacy llama-ner annotate PIPELINE INPUT OUTPUT [options]

INPUT is JSON Lines with a text field (every other field is carried through; blank lines
are skipped) or plain text with one document per line. OUTPUT gets one JSON line per
document, in input order, with the entities as {"start", "end", "label", "text"} and a
"score" where the pipeline gives entity probabilities (and then the beam's other scored
candidates as "candidates"); the entities are the ones `nlp.pipe` gives for the same
texts. `--docbin DIR` also writes the Docs as .spacy files; `--review-below P REVIEW`
the documents scored below P as Prodigy tasks, least confident first.

Run the same command again after any interruption: OUTPUT.progress.json is written before
anything else and records how far OUTPUT is complete; what was written after it is cut off
and redone. Bad lines are named as FILE:LINE and why; --skip-bad-lines goes on past them.
The reference is docs/annotate.md.

Modules: `records` (input lines, parsing, output records, progress file, writer), shared
by the runners `local` (in-process) and `on_ray` (Ray Data); `pipeline` (finding and
loading the pipeline); `review` (the review queue, from OUTPUT); `command` (arguments,
`run`, `main`).
"""
from .command import main, run
from .records import AnnotateError, BadLine

__all__ = ["main", "run", "AnnotateError", "BadLine"]
