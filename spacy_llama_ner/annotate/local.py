"""The in-process runner: one `nlp.pipe` stream, optionally with worker processes."""
from pathlib import Path
from typing import Iterator, Optional

from .pipeline import load_pipeline
from .records import Progress, Result, annotate_lines, read_lines


class LocalRunner:
    """Loads the pipeline in `start` (before OUTPUT is opened), then annotates."""

    def __init__(self, pipeline: str, gpu_id: int, n_process: int, code: Optional[str] = None,
                 quantize: Optional[str] = None):
        self.pipeline, self.gpu_id, self.n_process, self.code = pipeline, gpu_id, n_process, code
        self.quantize = quantize
        self.nlp = None

    def start(self) -> None:
        """Load the pipeline here: nlp.pipe's worker processes are forked from this one and
        share its (quantized) model."""
        self.nlp = load_pipeline(self.pipeline, self.gpu_id, self.code, self.quantize)

    def results(self, input_path: Path, progress: Progress, input_format: str, text_key: str, entities_key: str,
                batch_size: int, keep_docs: bool, max_bytes: int) -> Iterator[Result]:
        lines = read_lines(input_path, progress.input_byte, progress.lines_done + 1, max_bytes=max_bytes)
        return annotate_lines(self.nlp, lines, input_format, text_key, entities_key, batch_size, self.n_process,
                              keep_docs, max_bytes)

    def stop(self) -> None:
        pass
