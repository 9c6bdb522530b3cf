"""The annotate command on a Ray cluster, as a Ray Data pipeline.

The driver cuts INPUT, from where a resumed run continues, into shards of whole lines
(byte ranges). A pool of actors, each loading the pipeline once, annotates the shards
with the same parsing and output code as the one-process run, and the driver writes
the results in input order (Ray Data's `preserve_order`): OUTPUT is byte for byte what
one process writes. INPUT and the pipeline must be readable at the same path on every
node (a shared filesystem), or the pipeline installed as a package there.
"""
import logging
import os
from pathlib import Path
from typing import Dict, Iterator, List

from .annotate import AnnotateError, Progress, Result, annotate_records, load_pipeline, read_lines

RESULT_COLUMNS = ("number", "end_byte", "output", "error", "words", "entities", "doc_bytes")


def shard_ranges(path: Path, start_byte: int, first_line: int, lines_per_shard: int) -> List[dict]:
    """Byte ranges of `lines_per_shard` whole lines each, from `start_byte` to the end."""
    shards, begin, first, count = [], start_byte, first_line, 0
    end = start_byte
    for line in read_lines(path, start_byte, first_line):
        count, end = count + 1, line.end_byte
        if count == lines_per_shard:
            shards.append({"path": str(path), "start_byte": begin, "end_byte": end, "first_line": first})
            begin, first, count = end, line.number + 1, 0
    if count:
        shards.append({"path": str(path), "start_byte": begin, "end_byte": end, "first_line": first})
    return shards


class ShardAnnotator:
    """A Ray Data actor: loads the pipeline once, then annotates one shard per call."""

    def __init__(self, pipeline: str, input_format: str, text_key: str, entities_key: str,
                 batch_size: int, gpu: bool, keep_docs: bool):
        self.nlp = load_pipeline(pipeline, 0 if gpu else -1)
        self.settings = (input_format, text_key, entities_key, batch_size)
        self.keep_docs = keep_docs

    def __call__(self, shards: Dict[str, list]) -> Dict[str, list]:
        input_format, text_key, entities_key, batch_size = self.settings
        results: List[Result] = []
        for path, start, end, first in zip(shards["path"], shards["start_byte"], shards["end_byte"], shards["first_line"]):
            lines = read_lines(Path(path), int(start), int(first), int(end))
            results.extend(annotate_records(self.nlp, lines, input_format, text_key, entities_key, batch_size,
                                            keep_docs=self.keep_docs))
        columns = {name: [getattr(r, name) for r in results] for name in RESULT_COLUMNS}
        columns["doc_bytes"] = [b or b"" for b in columns["doc_bytes"]]
        return columns


def connect(address: str) -> bool:
    """Join or start a Ray cluster; True when this process started it (and should stop it)."""
    try:
        import ray
    except ImportError:
        raise AnnotateError("--ray needs Ray: pip install 'spacy-llama-ner[ray]'") from None
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
        return True
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise AnnotateError(f"--ray {address}: no Ray cluster there ({err})") from None
    return False


def annotate_on_ray(pipeline: str, input_path: Path, progress: Progress, input_format: str, text_key: str,
                    entities_key: str, batch_size: int, address: str, actors: int, gpu: bool, keep_docs: bool,
                    cpus_per_actor: float = 1, lines_per_shard: int = 0) -> Iterator[Result]:
    """Results for INPUT after `progress`, in input order, computed by `actors` Ray actors."""
    started = connect(address)
    import ray
    import ray.data

    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        shards = shard_ranges(input_path.resolve(), progress.input_byte, progress.lines_done + 1,
                              lines_per_shard or batch_size * 4)
        if not shards:
            return
        dataset = ray.data.from_items(shards).map_batches(
            ShardAnnotator,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_kwargs=dict(pipeline=pipeline, input_format=input_format, text_key=text_key,
                                       entities_key=entities_key, batch_size=batch_size, gpu=gpu, keep_docs=keep_docs),
            num_cpus=cpus_per_actor,
            num_gpus=1 if gpu else 0,
        )
        for row in dataset.iter_rows():
            yield Result(int(row["number"]), int(row["end_byte"]), str(row["output"]), str(row["error"]),
                         int(row["words"]), int(row["entities"]), bytes(row["doc_bytes"]) or None)
    finally:
        if started:
            ray.shutdown()
