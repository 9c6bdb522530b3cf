"""The Ray runner: the annotate command as a Ray Data pipeline.

The driver cuts INPUT, from where a resumed run continues, into shards of whole lines
(byte ranges) that each hold a whole number of `nlp.pipe` batches of documents. A pool
of actors, each loading the pipeline once, annotates the shards with the same parsing
and output code as the in-process runner (`records`), and the driver writes the results
in input order (Ray Data's `preserve_order`): OUTPUT is the one-process output. INPUT
and the pipeline must be readable at the same path on every node (a shared filesystem),
or the pipeline installed as a package there.
"""
import logging
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from .pipeline import load_pipeline
from .records import AnnotateError, BadLine, Progress, Result, annotate_lines, parse_line, read_lines

RESULT_COLUMNS = ("number", "end_byte", "output", "error", "words", "entities", "doc_bytes", "blank", "truncated_spans")


def shard_ranges(path: Path, start_byte: int, first_line: int, docs_per_shard: int, input_format: str,
                 text_key: str, entities_key: str, max_bytes: int) -> List[dict]:
    """Byte ranges of whole lines from `start_byte` to the end, each holding
    `docs_per_shard` documents (bad and blank lines ride along), the last one fewer."""
    shards, begin, first, docs = [], start_byte, first_line, 0
    end = start_byte
    for line in read_lines(path, start_byte, first_line, max_bytes=max_bytes):
        end = line.end_byte
        try:
            docs += parse_line(line, input_format, text_key, entities_key, max_bytes=max_bytes) is not None
        except BadLine:
            pass
        if docs == docs_per_shard:
            shards.append({"path": str(path), "start_byte": begin, "end_byte": end, "first_line": first})
            begin, first, docs = end, line.number + 1, 0
    if end > begin:
        shards.append({"path": str(path), "start_byte": begin, "end_byte": end, "first_line": first})
    return shards


class ShardAnnotator:
    """A Ray Data actor: loads the pipeline once (with the run's `quantize`: each actor
    quantizes its own copy), then annotates one shard per call."""

    def __init__(self, pipeline: str, input_format: str, text_key: str, entities_key: str,
                 batch_size: int, gpu: bool, keep_docs: bool, max_bytes: int, code: Optional[str] = None,
                 quantize: Optional[str] = None):
        self.nlp = load_pipeline(pipeline, 0 if gpu else -1, code, quantize)
        self.settings = (input_format, text_key, entities_key, batch_size)
        self.keep_docs, self.max_bytes = keep_docs, max_bytes

    def __call__(self, shards: Dict[str, list]) -> Dict[str, list]:
        input_format, text_key, entities_key, batch_size = self.settings
        results: List[Result] = []
        for path, start, end, first in zip(shards["path"], shards["start_byte"], shards["end_byte"], shards["first_line"]):
            lines = read_lines(Path(path), int(start), int(first), int(end), max_bytes=self.max_bytes)
            results.extend(annotate_lines(self.nlp, lines, input_format, text_key, entities_key, batch_size,
                                          keep_docs=self.keep_docs, max_bytes=self.max_bytes))
        columns = {name: [getattr(r, name) for r in results] for name in RESULT_COLUMNS}
        columns["doc_bytes"] = [b or b"" for b in columns["doc_bytes"]]
        return columns


class RayRunner:
    """Connects to (or starts) the cluster in `start`, before OUTPUT is opened."""

    def __init__(self, pipeline: str, address: str, actors: int, gpu: bool, cpus_per_actor: float,
                 code: Optional[str] = None, quantize: Optional[str] = None):
        self.pipeline, self.address, self.actors, self.gpu, self.cpus_per_actor = pipeline, address, actors, gpu, cpus_per_actor
        self.code, self.quantize = code, quantize
        self.started = False

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise AnnotateError("--ray needs Ray: pip install 'spacy-llama-ner[ray]'") from None
        if ray.is_initialized():
            return
        if self.address == "local":
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
            self.started = True
            return
        try:
            ray.init(address=self.address, logging_level=logging.WARNING)
        except Exception as err:  # ConnectionError, or a timeout, depending on the address
            raise AnnotateError(f"--ray {self.address}: no Ray cluster there ({err})") from None

    def results(self, input_path: Path, progress: Progress, input_format: str, text_key: str, entities_key: str,
                batch_size: int, keep_docs: bool, max_bytes: int, batches_per_shard: int = 4) -> Iterator[Result]:
        """Results for INPUT after `progress`, in input order, computed by the actors."""
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        shards = shard_ranges(input_path.resolve(), progress.input_byte, progress.lines_done + 1,
                              batch_size * batches_per_shard, input_format, text_key, entities_key, max_bytes)
        if not shards:
            return
        dataset = ray.data.from_items(shards).map_batches(
            ShardAnnotator,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            fn_constructor_kwargs=dict(pipeline=self.pipeline, input_format=input_format, text_key=text_key,
                                       entities_key=entities_key, batch_size=batch_size, gpu=self.gpu,
                                       keep_docs=keep_docs, max_bytes=max_bytes, code=self.code,
                                       quantize=self.quantize),
            num_cpus=self.cpus_per_actor,
            num_gpus=1 if self.gpu else 0,
        )
        for row in dataset.iter_rows():
            yield Result(int(row["number"]), int(row["end_byte"]), str(row["output"]), str(row["error"]),
                         int(row["words"]), int(row["entities"]), bytes(row["doc_bytes"]) or None,
                         bool(row["blank"]), int(row["truncated_spans"]))

    def stop(self) -> None:
        if self.started:
            import ray

            ray.shutdown()
