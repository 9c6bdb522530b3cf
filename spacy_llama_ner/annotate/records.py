"""What the annotate runners share: input lines, their parsing, output records, the
progress file and the writer that appends to OUTPUT in input order.

Nothing here loads a pipeline or imports a runner: the in-process runner (`local`)
and the Ray runner (`on_ray`) both import this module, and the command (`command`)
imports all three.
"""
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from wasabi import msg

from ..confidence.spans import entity_scores, has_scores

FORMATS = ("auto", "jsonl", "text")
# A line longer than this is a bad line, read past in chunks and never held in memory.
MAX_LINE_BYTES = 16 * 1024 * 1024
# The name of the count of a Doc's spans that lost word pieces to max_length, in
# doc.user_data, as spacy_llama_ner.backbone.model sets it.
TRUNCATED_KEY = "spacy_llama_ner.truncated_spans"
PROGRESS_FORMAT = 2
# The output field, with a scored pipeline, of the scored candidates that are not entities.
CANDIDATES_FIELD = "candidates"
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadLine(ValueError):
    """One input line that cannot be annotated, with why."""


class AnnotateError(Exception):
    """A user mistake the command reports in one line (file, line, setting)."""


def report(message: str) -> None:
    """One line on stderr, never wrapped (wasabi wraps at 80), so FILE:LINE reports stay greppable."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Line:
    number: int  # 1-based line number in INPUT
    end_byte: int  # byte offset just after the line
    raw: Optional[bytes]  # None: longer than the cap, not read into memory
    size: int = 0  # bytes, newline included


def read_lines(path: Path, start_byte: int = 0, first_number: int = 1, end_byte: Optional[int] = None,
               max_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """The lines of `path` from byte `start_byte` (line `first_number`) up to `end_byte`.
    A line of more than `max_bytes` bytes (its newline not counted) comes with raw=None."""
    with open(path, "rb") as f:
        f.seek(start_byte)
        offset, number = start_byte, first_number
        while end_byte is None or offset < end_byte:
            raw = f.readline(max_bytes + 1)
            if not raw:
                return
            size = len(raw)
            if size > max_bytes and not raw.endswith(b"\n") or size > max_bytes + 1:
                while not raw.endswith(b"\n"):  # the rest of a huge line, a chunk at a time
                    raw = f.readline(1 << 20)
                    if not raw:
                        break
                    size += len(raw)
                raw = None
            offset += size
            yield Line(number, offset, raw, size)
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


def parse_line(line: Line, input_format: str, text_key: str, entities_key: str,
               max_length: Optional[int] = None, max_bytes: int = MAX_LINE_BYTES,
               candidates_key: Optional[str] = None) -> Optional[dict]:
    """The record of one input line; None for a blank JSON Lines line (skipped, not an
    error); BadLine saying why a line has no record. `max_length`: the pipeline's
    nlp.max_length, in characters; `candidates_key`: another output field a record must
    not have."""
    if line.raw is None:
        raise BadLine(f"a line of {line.size:,} bytes, longer than --max-line-bytes {max_bytes:,}")
    try:
        content = line.raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadLine(f"not valid UTF-8 ({err.reason} at byte {err.start})") from None
    content = content[:-1] if content.endswith("\n") else content
    content = content[:-1] if content.endswith("\r") else content
    if line.number == 1 and content.startswith("\ufeff"):  # a byte-order mark some editors write
        content = content[1:]
    if input_format == "text":
        record = {text_key: content}
    else:
        if not content.strip():
            return None
        record = parse_json_record(content, text_key, entities_key, candidates_key)
    text = record[text_key]
    if max_length is not None and len(text) > max_length:
        raise BadLine(
            f"a text of {len(text):,} characters, longer than the pipeline's nlp.max_length ({max_length:,}): "
            "split it into smaller documents"
        )
    return record


def parse_json_record(content: str, text_key: str, entities_key: str, candidates_key: Optional[str] = None) -> dict:
    try:
        record = json.loads(content)
    except json.JSONDecodeError as err:
        raise BadLine(f"not valid JSON ({err.msg}, column {err.colno})") from None
    except RecursionError:
        raise BadLine("not valid JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise BadLine(f"a JSON {type(record).__name__}, not an object with a {text_key!r} field")
    if text_key not in record:
        raise BadLine(f"no {text_key!r} field (fields: {', '.join(map(repr, record)) or 'none'}); --text-key names another")
    text = record[text_key]
    if not isinstance(text, str):
        raise BadLine(f"{text_key!r} is a JSON {type(text).__name__}, not a string")
    if entities_key in record:
        raise BadLine(f"already has an {entities_key!r} field; --entities-key names another output field")
    if candidates_key is not None and candidates_key in record:
        raise BadLine(f"already has a {candidates_key!r} field, the output field of a scored pipeline's other candidate "
                      "entities: rename it in INPUT")
    lone = _SURROGATE.search(text)
    where = f"{text_key!r}" if lone else "a field"
    if lone is None:
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            lone = _SURROGATE.search(err.object)
        except (ValueError, RecursionError) as err:  # e.g. a number too long to print
            raise BadLine(f"cannot be written back as JSON ({err})") from None
    if lone is not None:
        raise BadLine(
            f"{where} has the JSON escape \\u{ord(lone.group()):04x}, half of a surrogate pair "
            "without its other half: not a Unicode character"
        )
    return record


def entities_of(doc) -> List[dict]:
    """The doc's entities as output records, with "score" where the pipeline gives scores."""
    scores = entity_scores(doc)
    entities = []
    for e in doc.ents:
        entity = {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text}
        score = scores.get((e.start_char, e.end_char, e.label_))
        if score is not None:
            entity["score"] = score
        entities.append(entity)
    return entities


def candidates_of(doc) -> List[dict]:
    """The doc's scored candidates that are not among its entities (the readings the beam
    kept besides the best one), as output records with their "score"."""
    ents = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
    return [{"start": start, "end": end, "label": label, "text": doc.text[start:end], "score": score}
            for (start, end, label), score in entity_scores(doc).items() if (start, end, label) not in ents]


def doc_bytes(doc) -> bytes:
    """The Doc for --docbin, without the transformer's tensors (user_data) that would bloat it."""
    return doc.to_bytes(exclude=["tensor", "user_data"])


def output_line(record: dict, added: dict) -> str:
    return json.dumps({**record, **added}, ensure_ascii=False) + "\n"


@dataclass
class Result:
    """One input line's outcome: its output line, why it has none (error), or a blank line."""

    number: int
    end_byte: int
    output: str = ""
    error: str = ""
    words: int = 0
    entities: int = 0
    doc_bytes: Optional[bytes] = None
    blank: bool = False
    truncated_spans: int = 0


def annotate_lines(nlp, lines, input_format: str, text_key: str, entities_key: str, batch_size: int,
                   n_process: int = 1, keep_docs: bool = False, max_bytes: int = MAX_LINE_BYTES) -> Iterator[Result]:
    """Results for `lines`, in order: bad and blank lines as such, the rest through one
    `nlp.pipe` stream, so the Docs are batched as `nlp.pipe` batches the same texts. With a
    scored pipeline each record also gets its other candidates (CANDIDATES_FIELD)."""
    pending: List[Result] = []  # bad and blank lines waiting for the documents before them
    candidates_key = CANDIDATES_FIELD if has_scores(nlp) else None

    def good_records():
        for line in lines:
            try:
                record = parse_line(line, input_format, text_key, entities_key, nlp.max_length, max_bytes,
                                    candidates_key)
            except BadLine as err:
                pending.append(Result(line.number, line.end_byte, error=str(err)))
                continue
            if record is None:
                pending.append(Result(line.number, line.end_byte, blank=True))
                continue
            yield record[text_key], (line.number, line.end_byte, record)

    stream = nlp.pipe(good_records(), as_tuples=True, batch_size=batch_size, n_process=n_process)
    for doc, (number, end_byte, record) in stream:
        while pending and pending[0].number < number:
            yield pending.pop(0)
        ents = entities_of(doc)
        added = {entities_key: ents}
        if candidates_key is not None:
            added[candidates_key] = candidates_of(doc)
        yield Result(number, end_byte, output_line(record, added), words=len(doc), entities=len(ents),
                     doc_bytes=doc_bytes(doc) if keep_docs else None,
                     truncated_spans=int(doc.user_data.get(TRUNCATED_KEY, 0)))
    yield from pending


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
    batch_size: int  # batches decide nothing but the float noise; resumes keep them anyway
    quantize: Optional[str]  # "int8" changes the features, so the entities and scores


@dataclass
class Progress:
    """How far OUTPUT is complete: written before anything else, saved at each checkpoint,
    read when a run resumes."""

    settings: dict
    format: int = PROGRESS_FORMAT
    lines_done: int = 0  # input lines fully handled (annotated, skipped or blank)
    input_byte: int = 0
    input_sha256: str = hashlib.sha256().hexdigest()  # of INPUT's bytes before input_byte
    output_byte: int = 0
    documents: int = 0
    words: int = 0
    entities: int = 0
    skipped: int = 0
    blank: int = 0
    truncated_spans: int = 0
    complete: bool = False

    @staticmethod
    def path_for(output: Path) -> Path:
        return output.with_name(output.name + ".progress.json")

    @property
    def nothing_done(self) -> bool:
        return self.lines_done == 0 and self.output_byte == 0

    @classmethod
    def load(cls, output: Path) -> "Progress":
        path = cls.path_for(output)
        start_again = f"remove {output} and {path.name} to start again, or pass --overwrite to replace it"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise AnnotateError(f"{path} is damaged ({err}), so how far {output} is complete is unknown: {start_again}") from None
        known = {f.name: f.type for f in fields(cls)}
        if not isinstance(data, dict) or data.get("format") != PROGRESS_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise AnnotateError(
                f"{path} is not a progress file of this version of the command (format {found!r}, "
                f"expected {PROGRESS_FORMAT}): {start_again}"
            )
        missing = [name for name in known if name not in data]
        wrong = [name for name, value in data.items() if name not in known or not _of_type(value, known[name])]
        if missing or wrong:
            raise AnnotateError(
                f"{path} is damaged (missing {', '.join(missing) or 'nothing'}; unexpected or mistyped "
                f"{', '.join(wrong) or 'nothing'}): {start_again}"
            )
        return cls(**data)

    def save(self, output: Path) -> None:
        """Atomically: a crash leaves the old file or the new one, both complete."""
        path = self.path_for(output)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(asdict(self), indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)


def _of_type(value, kind) -> bool:
    if kind in (int, "int"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (bool, "bool"):
        return isinstance(value, bool)
    if kind in (str, "str"):
        return isinstance(value, str)
    if kind in (dict, "dict"):
        return isinstance(value, dict)
    return True


def fsync_directory(path: Path) -> None:
    """Make a rename in `path` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def hash_input(path: Path, start: int, end: int, digest=None):
    """`digest` (a new sha256 by default) updated with INPUT's bytes from `start` to `end`;
    None when the file ends before `end`."""
    digest = digest or hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                return None
            digest.update(chunk)
            left -= len(chunk)
    return digest


def shard_name(first_line: int) -> str:
    return f"{first_line:012d}.spacy"


def start_or_resume(output: Path, input_path: Path, settings: Settings, overwrite: bool = False) -> Progress:
    """The saved Progress of an interrupted run with these settings, checked against
    OUTPUT and INPUT; else a fresh one, written at once, so that an interruption at any
    point later leaves a run that the same command resumes. OUTPUT is not touched here
    (a fresh run truncates it once the pipeline is ready). An OUTPUT this run cannot
    resume (another run's, a finished run of another pipeline) is refused, or with
    `overwrite` replaced."""
    progress_path = Progress.path_for(output)
    refusal = None
    try:
        progress = Progress.load(output) if progress_path.exists() else None
    except AnnotateError as err:  # a damaged progress file
        if not overwrite:
            raise
        msg.warn(f"--overwrite: replacing {output}, as {err}")
        progress_path.unlink()
        progress = None
    if progress is not None:
        if progress.settings.get("docbin"):
            remove_unrecorded_shard(Path(progress.settings["docbin"]), progress.lines_done)
        if not progress.nothing_done:
            refusal = resume_refusal(progress, output, input_path, asdict(settings))
            if refusal is None:
                return progress
        # else stopped before its first checkpoint: nothing of it is kept, so start afresh
    elif output.exists():
        refusal = f"{output} exists and is not the output of an interrupted run (no {progress_path.name} beside it)"
    if refusal and not overwrite:
        raise AnnotateError(f"{refusal}: remove {output} and {progress_path.name} to start again, "
                            "choose another OUTPUT, or pass --overwrite to replace it")
    if refusal:
        msg.warn(f"--overwrite: replacing {output}, as {refusal}")
    docbin = Path(settings.docbin) if settings.docbin else None
    if docbin is not None and docbin.exists():
        if not docbin.is_dir():
            raise AnnotateError(f"--docbin {docbin}: exists and is not a directory")
        if any(docbin.iterdir()):
            raise AnnotateError(f"--docbin {docbin}: a new run needs an empty or new directory, and this one has files")
    progress = Progress(settings=asdict(settings))
    progress.save(output)
    return progress


def resume_refusal(progress: Progress, output: Path, input_path: Path, wanted: dict) -> Optional[str]:
    """Why the run recorded in `progress` cannot go on into OUTPUT, or None."""
    changed = [
        "the pipeline's files changed" if k == "pipeline_files" else f"{k}: {progress.settings.get(k)!r} then, {v!r} now"
        for k, v in wanted.items()
        if progress.settings.get(k) != v
    ]
    if changed:
        return f"{output} was started with other arguments ({'; '.join(changed)}; the same arguments resume it)"
    if not output.exists() or output.stat().st_size < progress.output_byte:
        return f"{output} is shorter than {Progress.path_for(output).name} records"
    digest = hash_input(input_path, 0, progress.input_byte)
    if digest is None or digest.hexdigest() != progress.input_sha256:
        how = "is shorter than" if digest is None else "differs from"
        return (f"{input_path} changed since {output} was started: its first {progress.input_byte:,} bytes "
                f"(lines 1 to {progress.lines_done:,}) {how} the input annotated so far (restore it to resume)")
    return None


def remove_unrecorded_shard(docbin: Path, lines_done: int) -> None:
    """The one .spacy file a run may have written after its last saved checkpoint (its
    name starts at the first line that checkpoint did not cover); every other file in
    the directory is left alone."""
    shard = docbin / shard_name(lines_done + 1)
    for path in (shard, shard.with_suffix(".tmp")):
        if path.is_file():
            path.unlink()


class Writer:
    """Appends results to OUTPUT in input order and saves progress at checkpoints.

    `nlp.pipe` batches a stream of texts in consecutive runs of `batch_size`, and a Doc's
    features carry float noise from the others in its batch. A checkpoint is therefore
    only ever taken at a batch boundary (a multiple of `batch_size` documents after the
    start of the run's stream), so a resumed run, whose stream starts there, batches
    every document as the uninterrupted run does."""

    def __init__(self, output: Path, input_path: Path, progress: Progress, skip_bad_lines: bool,
                 docbin_dir: Optional[Path], every: int, on_line: Callable[[Result], None]):
        self.output, self.input_path, self.progress = output, input_path, progress
        self.skip_bad_lines, self.docbin_dir, self.every, self.on_line = skip_bad_lines, docbin_dir, every, on_line
        self.batch_size = int(progress.settings["batch_size"])
        if docbin_dir is not None:
            docbin_dir.mkdir(parents=True, exist_ok=True)
        with open(output, "ab") as f:  # created if missing; cut back to the last checkpoint
            f.truncate(progress.output_byte)
        self.file = open(output, "ab")
        self.output_byte = progress.output_byte
        self.documents_in_stream = 0
        self.docs: List[bytes] = []
        self.digest = hash_input(input_path, 0, progress.input_byte)
        self.hashed_byte = progress.input_byte
        self.mark_boundary()
        self.saved_lines = progress.lines_done

    def mark_boundary(self) -> None:
        """Remember the state after the last complete batch: where a checkpoint may go."""
        self.boundary = (replace(self.progress), self.output_byte, len(self.docs))

    def add(self, result: Result) -> None:
        if result.error:
            where = f"{self.input_path}:{result.number}"
            if not self.skip_bad_lines:
                self.checkpoint()
                raise AnnotateError(f"{where}: {result.error} (--skip-bad-lines skips such lines and counts them)")
            report(f"{where}: skipped: {result.error}")
            self.progress.skipped += 1
        elif result.blank:
            self.progress.blank += 1
        else:
            data = result.output.encode("utf-8")
            self.file.write(data)
            self.output_byte += len(data)
            self.progress.documents += 1
            self.progress.words += result.words
            self.progress.entities += result.entities
            self.progress.truncated_spans += result.truncated_spans
            self.documents_in_stream += 1
            if result.doc_bytes is not None:
                self.docs.append(result.doc_bytes)
        self.progress.lines_done, self.progress.input_byte = result.number, result.end_byte
        self.on_line(result)
        if not result.error and not result.blank and self.documents_in_stream % self.batch_size == 0:
            self.mark_boundary()
            if self.progress.lines_done - self.saved_lines >= self.every:
                self.checkpoint()

    def checkpoint(self, complete: bool = False) -> None:
        """Save progress at the last batch boundary (at the end, `complete`: everything)."""
        if complete:
            self.mark_boundary()
        saved, output_byte, n_docs = self.boundary
        self.file.flush()
        os.fsync(self.file.fileno())
        if self.docbin_dir is not None and n_docs:
            from spacy.tokens import Doc, DocBin
            from spacy.vocab import Vocab

            vocab, docbin = Vocab(), DocBin(store_user_data=False)
            for data in self.docs[:n_docs]:
                docbin.add(Doc(vocab).from_bytes(data))
            shard = self.docbin_dir / shard_name(self.saved_lines + 1)
            docbin.to_disk(shard.with_suffix(".tmp"))
            os.replace(shard.with_suffix(".tmp"), shard)
            fsync_directory(self.docbin_dir)
            del self.docs[:n_docs]
        self.digest = hash_input(self.input_path, self.hashed_byte, saved.input_byte, self.digest)
        self.hashed_byte = saved.input_byte
        saved.input_sha256 = self.digest.hexdigest()
        saved.output_byte = output_byte
        saved.complete = complete
        saved.save(self.output)
        self.saved_lines = saved.lines_done
        self.boundary = (replace(saved), output_byte, 0)

    def close(self) -> None:
        self.file.close()
