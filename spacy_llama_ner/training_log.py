"""The training logger (entry point `spacy_loggers`, see setup.cfg).

spaCy's ConsoleLogger.v3 prints the table; its JSON-lines file has fixed fields and is
only flushed when training ends. This logger keeps the console table and writes the file
itself: the same fields, plus `truncated_spans`, the spans the transformer has cut at
`max_length` so far (in training updates and in inference, i.e. the dev evaluations),
one line per evaluation, flushed as it is written so a stopped run keeps its log.
"""
import sys
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple, Union

import srsly
from spacy.language import Language
from spacy.training.loggers import console_logger_v3
from spacy.util import ensure_path, registry
from thinc.api import Model
from wasabi import Printer

from .backbone.model import TRUNCATED_IN_TRAINING, TRUNCATED_TOTAL


def truncated_span_counts(nlp: Language) -> Dict[str, int]:
    """Spans cut at max_length by the pipeline's transformer models since they were
    created: {"training": in updates, "inference": in predictions}."""
    total = training = 0
    seen = set()
    for _, component in nlp.components:
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            continue
        for node in model.walk():
            if node.id in seen:
                continue
            seen.add(node.id)
            total += node.attrs.get(TRUNCATED_TOTAL, 0)
            training += node.attrs.get(TRUNCATED_IN_TRAINING, 0)
    return {"training": training, "inference": total - training}


@registry.loggers("spacy_llama_ner.ConsoleLogger.v1")
def console_logger(
    progress_bar: Optional[str] = None,
    console_output: bool = True,
    output_file: Optional[Union[str, Path]] = None,
):
    """spaCy's ConsoleLogger.v3 (same arguments), whose output_file lines also say
    how many spans were cut at max_length. A log left by an earlier run in the same
    place is replaced (spaCy's logger would stop saving instead)."""
    console = console_logger_v3(progress_bar=progress_bar, console_output=console_output, output_file=None)
    path = ensure_path(output_file) if output_file else None

    def setup(nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr) -> Tuple[Callable, Callable]:
        log_console, finalize_console = console(nlp, stdout, stderr)
        stream = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            replacing = " (replacing an earlier run's log)" if path.exists() else ""
            print(Printer(no_print=True).info(f"Saving results to {path}{replacing}"), file=stdout, flush=True)
            stream = path.open("w", encoding="utf-8")
        trained = [name for name, pipe in nlp.pipeline if getattr(pipe, "is_trainable", False)]
        score_cols = [col for col, weight in nlp.config["training"]["score_weights"].items() if weight is not None]

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            log_console(info)
            if info is None or stream is None:
                return
            scores = {}
            for col in score_cols:  # as ConsoleLogger.v3 writes them
                score = float(info["other_scores"].get(col, 0.0))
                scores[col] = score if col == "speed" else score * 100
            line = {
                "epoch": info["epoch"],
                "step": info["step"],
                "losses": {name: float(info["losses"][name]) for name in trained},
                "scores": scores,
                "score": float(info["score"]),
                "truncated_spans": truncated_span_counts(nlp),
            }
            stream.write(srsly.json_dumps(line) + "\n")
            stream.flush()

        def finalize() -> None:
            finalize_console()
            if stream is not None:
                stream.close()

        return log_step, finalize

    return setup
