"""The review queue (--review-below P REVIEW.jsonl): the documents with an entity scored
below P, least confident first, as tasks for Prodigy's `ner.manual` and
`spans.manual` (or any tool that reads that JSON Lines format).

It is built from the complete OUTPUT, whose records carry the scores and, with a scored
pipeline, the other candidates (records.CANDIDATES_FIELD): a resumed, multi-process or
Ray run gives the same file as one uninterrupted run, and rerunning a finished command
with another P rebuilds it without annotating again.
"""
import json
import os
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from .records import CANDIDATES_FIELD, AnnotateError, fsync_directory


def lowest_score(record: dict, entities_key: str) -> Optional[float]:
    """The lowest score of the record's entities; None when none is scored (entities
    preset by an earlier component have no score). Candidates do not count: a low score
    there is a reading the beam rightly set aside, not doubt about an entity."""
    return min((item["score"] for item in record[entities_key] if "score" in item), default=None)


def uncertain_records(output: Path, below: float, entities_key: str) -> List[Tuple[float, int, int]]:
    """(lowest score, line number, byte offset) of each OUTPUT record with a score below
    `below`, least confident first, ties in OUTPUT's order. Offsets, not records, are kept,
    so that a large OUTPUT is not held in memory."""
    found = []
    offset = 0
    with open(output, "rb") as f:
        for number, line in enumerate(f, 1):
            score = lowest_score(json.loads(line), entities_key)
            if score is not None and score < below:
                found.append((score, number, offset))
            offset += len(line)
    return sorted(found)


def prodigy_span(doc, entity: dict, number: int) -> dict:
    """An OUTPUT entity as a Prodigy span; token_end is its last token (inclusive)."""
    span = doc.char_span(entity["start"], entity["end"])
    if span is None:
        raise AnnotateError(f"line {number} of OUTPUT: the entity at characters {entity['start']}-{entity['end']} "
                            "does not start and end on the pipeline tokenizer's tokens (a component changed them)")
    task_span = {"start": entity["start"], "end": entity["end"], "token_start": span.start, "token_end": span.end - 1,
                 "label": entity["label"]}
    if "score" in entity:
        task_span["score"] = entity["score"]
    return task_span


def prodigy_task(record: dict, number: int, score: float, text_key: str, entities_key: str,
                 make_doc: Callable) -> dict:
    """OUTPUT's record `number` as a Prodigy task: the entities are the spans to correct,
    the other candidates are in meta; the input's "id" and "meta" fields are kept."""
    text = record[text_key]
    doc = make_doc(text)
    tokens = [{"text": t.text, "start": t.idx, "end": t.idx + len(t.text), "id": t.i, "ws": bool(t.whitespace_)}
              for t in doc]
    input_meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    task = {
        "text": text,
        "tokens": tokens,
        "spans": [prodigy_span(doc, entity, number) for entity in record[entities_key]],
        "meta": {**input_meta, "score": score, "output_line": number, "candidates": record.get(CANDIDATES_FIELD, [])},
    }
    if "id" in record:
        task["id"] = record["id"]
    return task


def write_review(output: Path, review: Path, below: float, text_key: str, entities_key: str,
                 make_doc: Callable) -> int:
    """Write REVIEW from the complete OUTPUT, atomically (as the progress file); returns
    the number of tasks."""
    selected = uncertain_records(output, below, entities_key)
    review.parent.mkdir(parents=True, exist_ok=True)
    tmp = review.with_name(review.name + ".tmp")
    with open(output, "rb") as source, open(tmp, "w", encoding="utf-8") as f:
        for score, number, offset in selected:
            source.seek(offset)
            task = prodigy_task(json.loads(source.readline()), number, score, text_key, entities_key, make_doc)
            f.write(json.dumps(task, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, review)
    fsync_directory(review.parent)
    return len(selected)
