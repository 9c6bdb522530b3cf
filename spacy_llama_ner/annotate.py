"""Annotate a corpus with a trained pipeline: one command, resumable, on one machine or Ray.

    python -m spacy_llama_ner.annotate PIPELINE INPUT OUTPUT [options]

INPUT is JSON Lines with a text field (every other field is carried through) or plain
text with one document per line. OUTPUT gets one JSON line per input line, in input
order, with the entities as {"start", "end", "label", "text"} (character offsets into
the text). `--docbin DIR` also writes the Docs as .spacy files that spaCy reads as one
corpus.

An interrupted run, started again with the same arguments, continues where it stopped:
OUTPUT.progress.json records how far OUTPUT is known to be complete, and output written
after that point is cut off and redone. A bad input line (not JSON, not an object, no
text, text not a string, not UTF-8) stops the run with FILE:LINE and the reason, with
everything before it kept; with --skip-bad-lines it is reported, left out of OUTPUT and
counted in the summary.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional

from wasabi import msg

FORMATS = ("auto", "jsonl", "text")


class BadLine(ValueError):
    """One input line that cannot be annotated, with why."""


class AnnotateError(Exception):
    """A user mistake the command reports in one line (file, line, setting)."""


@dataclass
class Line:
    number: int  # 1-based line number in INPUT
    end_byte: int  # byte offset just after the line
    raw: bytes


def report(message: str) -> None:
    """One line on stderr, never wrapped (wasabi wraps at 80), so FILE:LINE reports stay greppable."""
    print(message, file=sys.stderr, flush=True)


def read_lines(path: Path, start_byte: int = 0, first_number: int = 1, end_byte: Optional[int] = None) -> Iterator[Line]:
    """The lines of `path` from byte `start_byte` (line `first_number`) up to `end_byte`."""
    with open(path, "rb") as f:
        f.seek(start_byte)
        offset, number = start_byte, first_number
        for raw in f:
            if end_byte is not None and offset >= end_byte:
                return
            offset += len(raw)
            yield Line(number, offset, raw)
            number += 1


def count_lines(path: Path, start_byte: int = 0) -> int:
    """Lines from `start_byte` to the end, counted like `read_lines` counts them."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        f.seek(start_byte)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def input_format_of(path: Path, requested: str) -> str:
    if requested != "auto":
        return requested
    return "jsonl" if path.suffix.lower() in (".jsonl", ".json", ".ndjson") else "text"


def parse_line(line: Line, input_format: str, text_key: str, entities_key: str) -> dict:
    """The record of one input line, or BadLine saying why there is none."""
    try:
        content = line.raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadLine(f"not valid UTF-8 ({err.reason} at byte {err.start})") from None
    content = content[:-1] if content.endswith("\n") else content
    content = content[:-1] if content.endswith("\r") else content
    if line.number == 1 and content.startswith("\ufeff"):  # a byte-order mark some editors write
        content = content[1:]
    if input_format == "text":
        return {text_key: content}
    try:
        record = json.loads(content)
    except json.JSONDecodeError as err:
        raise BadLine(f"not valid JSON ({err.msg}, column {err.colno})") from None
    if not isinstance(record, dict):
        raise BadLine(f"a JSON {type(record).__name__}, not an object with a {text_key!r} field")
    if text_key not in record:
        raise BadLine(f"no {text_key!r} field (fields: {', '.join(map(repr, record)) or 'none'}); --text-key names another")
    if not isinstance(record[text_key], str):
        raise BadLine(f"{text_key!r} is a JSON {type(record[text_key]).__name__}, not a string")
    if entities_key in record:
        raise BadLine(f"already has an {entities_key!r} field; --entities-key names another output field")
    return record


def entities_of(doc) -> List[dict]:
    return [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents]


def doc_bytes(doc) -> bytes:
    """The Doc for --docbin, without the transformer's tensors (user_data) that would bloat it."""
    return doc.to_bytes(exclude=["tensor", "user_data"])


def output_line(record: dict, entities: List[dict], entities_key: str) -> str:
    return json.dumps({**record, entities_key: entities}, ensure_ascii=False) + "\n"


@dataclass
class Settings:
    """What a resumed run must share with the run it continues."""

    pipeline: str
    pipeline_files: str  # changes when the pipeline's files do (a retrained model-best)
    input: str
    input_format: str
    text_key: str
    entities_key: str
    skip_bad_lines: bool
    docbin: Optional[str]


@dataclass
class Progress:
    """How far OUTPUT is complete: saved at each checkpoint, read when a run resumes."""

    settings: dict
    lines_done: int = 0  # input lines fully handled (annotated or skipped)
    input_byte: int = 0
    output_byte: int = 0
    documents: int = 0
    words: int = 0
    entities: int = 0
    skipped: int = 0
    complete: bool = False

    @classmethod
    def path_for(cls, output: Path) -> Path:
        return output.with_name(output.name + ".progress.json")

    def save(self, output: Path) -> None:
        path = self.path_for(output)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        os.replace(tmp, path)


def start_or_resume(output: Path, settings: Settings) -> Progress:
    """A fresh Progress, or the saved one with OUTPUT cut back to its last checkpoint."""
    progress_path = Progress.path_for(output)
    wanted = asdict(settings)
    if not progress_path.exists():
        if output.exists():
            raise AnnotateError(
                f"{output} exists and is not the output of an interrupted run (no {progress_path.name} beside it): "
                "remove it or choose another OUTPUT"
            )
        return Progress(settings=wanted)
    progress = Progress(**json.loads(progress_path.read_text(encoding="utf-8")))
    changed = [
        "the pipeline's files changed" if k == "pipeline_files" else f"{k}: {progress.settings.get(k)!r} then, {v!r} now"
        for k, v in wanted.items()
        if progress.settings.get(k) != v
    ]
    if changed:
        raise AnnotateError(
            f"{output} was started with other arguments ({'; '.join(changed)}): rerun with the same "
            f"arguments to resume, or remove {output} and {progress_path.name} to start again"
        )
    if not output.exists() or output.stat().st_size < progress.output_byte:
        raise AnnotateError(f"{output} is shorter than {progress_path.name} records: remove both to start again")
    with open(output, "r+b") as f:
        f.truncate(progress.output_byte)
    return progress


@dataclass
class Result:
    """One input line's outcome: its output line, or why it has none."""

    number: int
    end_byte: int
    output: str = ""
    error: str = ""
    words: int = 0
    entities: int = 0
    doc_bytes: Optional[bytes] = None


class Writer:
    """Appends results to OUTPUT in order and checkpoints every `every` lines written."""

    def __init__(self, output: Path, input_path: Path, progress: Progress, skip_bad_lines: bool,
                 docbin_dir: Optional[Path], every: int, on_line: Callable[[Result], None]):
        self.output, self.input_path, self.progress = output, input_path, progress
        self.skip_bad_lines, self.docbin_dir, self.every, self.on_line = skip_bad_lines, docbin_dir, every, on_line
        self.file = open(output, "ab")
        self.since_checkpoint = 0
        self.docs: List[bytes] = []
        self.first_unsaved_line = progress.lines_done + 1
        if docbin_dir is not None:
            docbin_dir.mkdir(parents=True, exist_ok=True)
            for shard in docbin_dir.glob("*.spacy"):  # written after the last checkpoint: redone
                if shard.stem.isdigit() and int(shard.stem) > progress.lines_done:
                    shard.unlink()

    def add(self, result: Result) -> None:
        if result.error:
            where = f"{self.input_path}:{result.number}"
            if not self.skip_bad_lines:
                self.checkpoint()
                raise AnnotateError(f"{where}: {result.error} (--skip-bad-lines skips such lines and counts them)")
            report(f"{where}: skipped: {result.error}")
            self.progress.skipped += 1
        else:
            self.file.write(result.output.encode("utf-8"))
            self.progress.documents += 1
            self.progress.words += result.words
            self.progress.entities += result.entities
            if result.doc_bytes is not None:
                self.docs.append(result.doc_bytes)
        self.progress.lines_done, self.progress.input_byte = result.number, result.end_byte
        self.since_checkpoint += 1
        self.on_line(result)
        if self.since_checkpoint >= self.every:
            self.checkpoint()

    def checkpoint(self, complete: bool = False) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        if self.docbin_dir is not None and self.docs:
            from spacy.tokens import Doc, DocBin
            from spacy.vocab import Vocab

            vocab, docbin = Vocab(), DocBin()
            for data in self.docs:
                docbin.add(Doc(vocab).from_bytes(data))
            shard = self.docbin_dir / f"{self.first_unsaved_line:012d}.spacy"
            docbin.to_disk(shard.with_suffix(".tmp"))
            os.replace(shard.with_suffix(".tmp"), shard)
            self.docs = []
        self.progress.output_byte = self.file.tell()
        self.progress.complete = complete
        self.progress.save(self.output)
        self.since_checkpoint = 0
        self.first_unsaved_line = self.progress.lines_done + 1

    def close(self) -> None:
        self.file.close()


def annotate_records(nlp, lines: Iterable[Line], input_format: str, text_key: str, entities_key: str,
                     batch_size: int, n_process: int = 1, keep_docs: bool = False) -> Iterator[Result]:
    """Results for `lines`, in order: bad lines as errors, the rest through `nlp.pipe`."""
    pending: List[Result] = []  # bad lines waiting for the documents before them

    def good_records():
        for line in lines:
            try:
                record = parse_line(line, input_format, text_key, entities_key)
            except BadLine as err:
                pending.append(Result(line.number, line.end_byte, error=str(err)))
                continue
            yield record[text_key], (line, record)

    for doc, (line, record) in nlp.pipe(good_records(), as_tuples=True, batch_size=batch_size, n_process=n_process):
        while pending and pending[0].number < line.number:
            yield pending.pop(0)
        ents = entities_of(doc)
        yield Result(line.number, line.end_byte, output_line(record, ents, entities_key), words=len(doc),
                     entities=len(ents), doc_bytes=doc_bytes(doc) if keep_docs else None)
    yield from pending


def pipeline_location(pipeline: str) -> str:
    """An absolute directory, or the name of an installed pipeline package."""
    from spacy.util import is_package

    if Path(pipeline).exists():
        return str(Path(pipeline).resolve())
    if is_package(pipeline):
        return pipeline
    raise AnnotateError(f"pipeline not found: {pipeline} (a directory from `spacy train` or an installed package name)")


def pipeline_fingerprint(pipeline: str) -> str:
    """A digest of the names, sizes and modification times of the pipeline's files."""
    import hashlib

    root = Path(pipeline)
    if not root.exists():
        from spacy.util import get_package_path

        root = get_package_path(pipeline)
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_pipeline(pipeline: str, gpu_id: int):
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        return spacy.load(pipeline)
    except OSError as err:
        raise AnnotateError(f"cannot load pipeline {pipeline!r}: {err}") from None


def run(pipeline: str, input_path: Path, output: Path, *, input_format: str = "auto", text_key: str = "text",
        entities_key: str = "entities", batch_size: int = 64, gpu_id: int = -1, n_process: int = 1,
        skip_bad_lines: bool = False, docbin: Optional[Path] = None, checkpoint_every: int = 1000,
        ray_address: Optional[str] = None, actors: int = 1, ray_gpu: bool = False, cpus_per_actor: float = 1,
        progress_bar: bool = True) -> Progress:
    """Annotate INPUT into OUTPUT (resuming a run stopped earlier); returns the final Progress."""
    from tqdm import tqdm

    if not input_path.is_file():
        raise AnnotateError(f"input file not found: {input_path}")
    if input_format not in FORMATS:
        raise AnnotateError(f"--input-format {input_format!r}: use one of {', '.join(FORMATS)}")
    for name, value in (("--batch-size", batch_size), ("--n-process", n_process), ("--checkpoint-every", checkpoint_every), ("--actors", actors)):
        if value < 1:
            raise AnnotateError(f"{name} must be at least 1, got {value}")
    if ray_address is not None and (n_process != 1 or gpu_id >= 0):
        raise AnnotateError("with --ray, use --actors for parallelism and --gpu for a GPU per actor (not --n-process / --gpu-id)")
    input_format = input_format_of(input_path, input_format)
    pipeline_id = pipeline_location(pipeline)
    settings = Settings(pipeline_id, pipeline_fingerprint(pipeline_id), str(input_path.resolve()), input_format, text_key, entities_key, skip_bad_lines,
                        str(docbin.resolve()) if docbin else None)
    output.parent.mkdir(parents=True, exist_ok=True)
    progress = start_or_resume(output, settings)
    if progress.complete:
        msg.good(f"{output} is already complete ({progress.documents} documents)")
        return progress
    if progress.lines_done:
        msg.info(f"Resuming after input line {progress.lines_done:,}: {output}")
    remaining = count_lines(input_path, progress.input_byte)
    start = time.perf_counter()
    bar = tqdm(total=remaining, unit="doc", disable=not progress_bar, smoothing=0.1, dynamic_ncols=True)
    words_start, documents_start = progress.words, progress.documents

    def rates() -> str:
        seconds = max(time.perf_counter() - start, 1e-9)
        return f"{(progress.documents - documents_start) / seconds:,.1f} docs/s, {(progress.words - words_start) / seconds:,.0f} words/s"

    def on_line(result: Result) -> None:
        bar.update(1)
        if bar.n % 64 == 0 or bar.n == remaining:
            bar.set_postfix_str(rates())

    writer = Writer(output, input_path, progress, skip_bad_lines, docbin, checkpoint_every, on_line)
    lines = read_lines(input_path, progress.input_byte, progress.lines_done + 1)
    keep_docs = docbin is not None
    try:
        if ray_address is None:
            nlp = load_pipeline(pipeline_id, gpu_id)
            results = annotate_records(nlp, lines, input_format, text_key, entities_key, batch_size, n_process, keep_docs)
        else:
            from .annotate_ray import annotate_on_ray

            results = annotate_on_ray(pipeline_id, input_path, progress, input_format, text_key, entities_key,
                                      batch_size, ray_address, actors, ray_gpu, keep_docs, cpus_per_actor)
        for result in results:
            writer.add(result)
        writer.checkpoint(complete=True)
    finally:
        bar.close()
        writer.close()
        msg.info(
            f"{progress.documents:,} documents, {progress.words:,} words, {progress.entities:,} entities, "
            f"{progress.skipped:,} bad lines skipped; this run: {time.perf_counter() - start:.1f} s, {rates()}"
        )
    msg.good(f"Wrote {output}" + (f" and {docbin}/" if docbin else ""))
    return progress


def parse_args(argv=None, prog: str = "python -m spacy llama-ner annotate") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("pipeline", help="a pipeline directory (e.g. training/model-best) or an installed pipeline package")
    p.add_argument("input", type=Path, help="JSON Lines with a text field, or plain text with one document per line")
    p.add_argument("output", type=Path, help="JSON Lines out, one line per input line")
    p.add_argument("--input-format", default="auto", choices=FORMATS,
                   help="auto (default): .jsonl/.json/.ndjson are JSON Lines, anything else plain text")
    p.add_argument("--text-key", default="text", help="the JSON field with the text (default: text)")
    p.add_argument("--entities-key", default="entities", help="the output field for the entities (default: entities)")
    p.add_argument("--batch-size", type=int, default=64, help="documents per nlp.pipe batch (default: 64)")
    p.add_argument("--gpu-id", type=int, default=-1, help="GPU to run on, -1 for the CPU (default)")
    p.add_argument("--n-process", type=int, default=1, help="worker processes for nlp.pipe (default: 1)")
    p.add_argument("--skip-bad-lines", action="store_true", help="report bad lines and go on, instead of stopping")
    p.add_argument("--docbin", type=Path, default=None, help="also write the Docs as .spacy files into this directory")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="input lines between checkpoints (default: 1000)")
    p.add_argument("--ray", dest="ray_address", default=None, metavar="ADDRESS",
                   help="run on Ray: 'local' starts a cluster in this process, 'auto' joins the running one, "
                        "or a cluster address (e.g. ray://head:10001)")
    p.add_argument("--actors", type=int, default=1, help="with --ray: pipeline actors (each loads the pipeline once)")
    p.add_argument("--gpu", dest="ray_gpu", action="store_true", help="with --ray: one GPU per actor")
    p.add_argument("--cpus-per-actor", type=float, default=1, help="with --ray: CPUs (torch threads) per actor (default: 1)")
    p.add_argument("--no-progress", dest="progress_bar", action="store_false", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None, prog: str = "python -m spacy llama-ner annotate") -> int:
    args = parse_args(argv, prog)
    try:
        run(args.pipeline, args.input, args.output, input_format=args.input_format, text_key=args.text_key,
            entities_key=args.entities_key, batch_size=args.batch_size, gpu_id=args.gpu_id, n_process=args.n_process,
            skip_bad_lines=args.skip_bad_lines, docbin=args.docbin, checkpoint_every=args.checkpoint_every,
            ray_address=args.ray_address, actors=args.actors, ray_gpu=args.ray_gpu,
            cpus_per_actor=args.cpus_per_actor, progress_bar=args.progress_bar)
    except AnnotateError as err:
        report(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
