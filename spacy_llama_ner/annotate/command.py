"""The annotate command: check the arguments, save or resume progress, start a runner
(in-process or Ray), then write its results in input order."""
import argparse
import time
from pathlib import Path
from typing import List, Optional, Tuple

from wasabi import msg

from .pipeline import (QUANTIZE, load_tokenizer, pipeline_batch_size, pipeline_fingerprint, pipeline_location,
                       require_entity_scores)
from .records import (CANDIDATES_FIELD, FORMATS, MAX_LINE_BYTES, AnnotateError, Progress, Result, Settings, Writer,
                      count_lines, input_format_of, report, start_or_resume)

PROG = "python -m spacy llama-ner annotate"
DESCRIPTION = "Annotate a corpus with a trained pipeline: one command, resumable, on one machine or Ray."
REVIEW_P = "--review-below P: P must be a probability in (0, 1]"


def check_arguments(input_path: Path, output: Path, input_format: str, batch_size: Optional[int], gpu_id: int,
                    n_process: int, checkpoint_every: int, ray_address: Optional[str], actors: int,
                    max_line_bytes: int, docbin: Optional[Path], entities_key: str,
                    review_below: Optional[Tuple[float, Path]], quantize: Optional[str], ray_gpu: bool) -> None:
    if not input_path.is_file():
        raise AnnotateError(f"input file not found: {input_path}")
    if input_format not in FORMATS:
        raise AnnotateError(f"--input-format {input_format!r}: use one of {', '.join(FORMATS)}")
    for name, value in (("--batch-size", batch_size), ("--n-process", n_process), ("--checkpoint-every", checkpoint_every),
                        ("--actors", actors), ("--max-line-bytes", max_line_bytes)):
        if value is not None and value < 1:
            raise AnnotateError(f"{name} must be at least 1, got {value}")
    if ray_address is not None and (n_process != 1 or gpu_id >= 0):
        raise AnnotateError("with --ray, use --actors for parallelism and --gpu for a GPU per actor (not --n-process / --gpu-id)")
    if n_process > 1 and gpu_id >= 0:
        raise AnnotateError(
            f"--n-process {n_process} with --gpu-id {gpu_id}: worker processes cannot share one GPU; "
            "use --n-process 1 on a GPU (or --ray with --gpu for one GPU per actor)"
        )
    if quantize is not None:
        check_quantize(quantize, gpu_id, ray_gpu)
    if output.exists() and output.is_dir():
        raise AnnotateError(f"OUTPUT {output} is a directory: give a file name")
    if docbin is not None and docbin.resolve() == output.resolve():
        raise AnnotateError(f"--docbin {docbin} is OUTPUT itself: give a directory of its own")
    if entities_key == CANDIDATES_FIELD:
        raise AnnotateError(f"--entities-key {CANDIDATES_FIELD}: a scored pipeline's other candidates go there; "
                            "choose another name")
    if review_below is not None:
        check_review(*review_below, input_path, output)


def check_quantize(quantize: str, gpu_id: int, ray_gpu: bool) -> None:
    if quantize not in QUANTIZE:
        raise AnnotateError(f"--quantize {quantize!r}: use one of {', '.join(QUANTIZE)}")
    if gpu_id >= 0 or ray_gpu:
        gpu = f"--gpu-id {gpu_id}" if gpu_id >= 0 else "--gpu"
        raise AnnotateError(f"--quantize {quantize} with {gpu}: {quantize} runs on the CPU only; leave out one of the two")


def check_review(below: float, review: Path, input_path: Path, output: Path) -> None:
    if not 0 < below <= 1:
        raise AnnotateError(f"{REVIEW_P}, got {below}")
    if review.is_dir():
        raise AnnotateError(f"--review-below {below} {review}: a directory; give a file name")
    if review.resolve() in (input_path.resolve(), output.resolve()):
        raise AnnotateError(f"--review-below {below} {review}: that is INPUT or OUTPUT; give a file of its own")


def run(pipeline: str, input_path: Path, output: Path, *, input_format: str = "auto", text_key: str = "text",
        entities_key: str = "entities", batch_size: Optional[int] = None, gpu_id: int = -1, n_process: int = 1,
        skip_bad_lines: bool = False, docbin: Optional[Path] = None, checkpoint_every: int = 1000,
        ray_address: Optional[str] = None, actors: int = 1, ray_gpu: bool = False, cpus_per_actor: float = 1,
        max_line_bytes: int = MAX_LINE_BYTES, code: Optional[Path] = None, progress_bar: bool = True,
        overwrite: bool = False, review_below: Optional[Tuple[float, Path]] = None,
        quantize: Optional[str] = None) -> Progress:
    """Annotate INPUT into OUTPUT (resuming a run stopped earlier); returns the final Progress.

    `batch_size` None: the pipeline's own [nlp] batch_size, the one `nlp.pipe` uses, so that
    the entities are the ones `nlp.pipe` gives for the same texts. `review_below` (P, REVIEW):
    then also write REVIEW, the review queue of the documents scored below P (`review`).
    `quantize` "int8": load the pipeline with the transformer's quantize = "int8" (CPU only)."""
    input_path, output = Path(input_path), Path(output)
    review_below = (review_below[0], Path(review_below[1])) if review_below else None
    check_arguments(input_path, output, input_format, batch_size, gpu_id, n_process, checkpoint_every, ray_address,
                    actors, max_line_bytes, docbin, entities_key, review_below, quantize, ray_gpu)
    input_format = input_format_of(input_path, input_format)
    pipeline_id = pipeline_location(pipeline)
    batch_size = batch_size or pipeline_batch_size(pipeline_id)
    settings = Settings(pipeline_id, pipeline_fingerprint(pipeline_id), str(input_path.resolve()), input_format, text_key,
                        entities_key, skip_bad_lines, str(docbin.resolve()) if docbin else None, batch_size, quantize)
    code = str(Path(code).resolve()) if code else None
    if code and not Path(code).is_file():
        raise AnnotateError(f"--code {code}: file not found")
    if review_below is not None:
        require_entity_scores(pipeline_id, code)
    output.parent.mkdir(parents=True, exist_ok=True)
    progress = start_or_resume(output, input_path, settings, overwrite)  # saved before anything can fail
    if progress.complete:
        msg.good(f"{output} is already complete ({progress.documents:,} documents)")
    else:
        progress = annotate_rest(pipeline_id, input_path, output, progress, input_format, text_key, entities_key,
                                 batch_size, gpu_id, n_process, skip_bad_lines, docbin, checkpoint_every, ray_address,
                                 actors, ray_gpu, cpus_per_actor, max_line_bytes, code, progress_bar, quantize)
    if review_below is not None:
        write_review_queue(pipeline_id, output, *review_below, text_key, entities_key)
    return progress


def annotate_rest(pipeline_id: str, input_path: Path, output: Path, progress: Progress, input_format: str,
                  text_key: str, entities_key: str, batch_size: int, gpu_id: int, n_process: int,
                  skip_bad_lines: bool, docbin: Optional[Path], checkpoint_every: int, ray_address: Optional[str],
                  actors: int, ray_gpu: bool, cpus_per_actor: float, max_line_bytes: int, code: Optional[str],
                  progress_bar: bool, quantize: Optional[str]) -> Progress:
    """Start a runner, annotate what OUTPUT lacks and stop the runner."""
    from tqdm import tqdm

    if ray_address is None:
        from .local import LocalRunner

        runner = LocalRunner(pipeline_id, gpu_id, n_process, code, quantize)
    else:
        from .on_ray import RayRunner

        runner = RayRunner(pipeline_id, ray_address, actors, ray_gpu, cpus_per_actor, code, quantize)
    try:
        runner.start()  # loads the pipeline or joins the cluster before OUTPUT is opened
    except BaseException:
        if progress.nothing_done and not output.exists():  # leave nothing behind
            Progress.path_for(output).unlink(missing_ok=True)
        raise
    try:
        return write_results(runner, input_path, output, progress, input_format, text_key, entities_key, batch_size,
                             skip_bad_lines, docbin, checkpoint_every, max_line_bytes, progress_bar, tqdm)
    finally:
        runner.stop()


def write_review_queue(pipeline_id: str, output: Path, below: float, review: Path, text_key: str,
                       entities_key: str) -> None:
    from .review import write_review

    count = write_review(output, review, below, text_key, entities_key, load_tokenizer(pipeline_id))
    msg.good(f"Wrote {review}: {count:,} documents with a score below {below}, least confident first")


def write_results(runner, input_path: Path, output: Path, progress: Progress, input_format: str, text_key: str,
                  entities_key: str, batch_size: int, skip_bad_lines: bool, docbin: Optional[Path],
                  checkpoint_every: int, max_line_bytes: int, progress_bar: bool, tqdm) -> Progress:
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
    try:
        for result in runner.results(input_path, progress, input_format, text_key, entities_key, batch_size,
                                     docbin is not None, max_line_bytes):
            writer.add(result)
        writer.checkpoint(complete=True)
    finally:
        bar.close()
        writer.close()
        msg.info(
            f"{progress.documents:,} documents, {progress.words:,} words, {progress.entities:,} entities, "
            f"{progress.skipped:,} bad lines skipped, {progress.blank:,} blank lines, "
            f"{progress.truncated_spans:,} spans cut at max_length; "
            f"this run: {time.perf_counter() - start:.1f} s, {rates()}"
        )
    if progress.truncated_spans:
        msg.warn(
            f"{progress.truncated_spans:,} spans had more word pieces than the transformer's max_length and were cut "
            "(their last tokens share the features of the last piece kept): a smaller get_spans window avoids it"
        )
    msg.good(f"Wrote {output}" + (f" and {docbin}/" if docbin else ""))
    return progress


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION,
                                epilog="Reference: docs/annotate.md (input formats, output, resuming, bad lines, Ray, scores)")
    p.add_argument("pipeline", help="a pipeline directory (e.g. training/model-best) or an installed pipeline package")
    p.add_argument("input", type=Path, help="JSON Lines with a text field, or plain text with one document per line")
    p.add_argument("output", type=Path, help="JSON Lines out, one line per input document, in input order")
    p.add_argument("--input-format", default="auto", choices=FORMATS,
                   help="auto (default): .jsonl/.json/.ndjson are JSON Lines, anything else plain text")
    p.add_argument("--text-key", default="text", help="the JSON field with the text (default: text)")
    p.add_argument("--entities-key", default="entities", help="the output field for the entities (default: entities)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="documents per nlp.pipe batch (default: the pipeline's [nlp] batch_size, as nlp.pipe uses)")
    p.add_argument("--gpu-id", type=int, default=-1, help="GPU to run on, -1 for the CPU (default)")
    p.add_argument("--n-process", type=int, default=1, help="worker processes for nlp.pipe, CPU only (default: 1)")
    p.add_argument("--skip-bad-lines", action="store_true", help="report bad lines and go on, instead of stopping")
    p.add_argument("--max-line-bytes", type=int, default=MAX_LINE_BYTES,
                   help=f"a longer input line is a bad line (default: {MAX_LINE_BYTES:,})")
    p.add_argument("--docbin", type=Path, default=None,
                   help="also write the Docs as .spacy files into this directory (new or empty)")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="input lines between checkpoints, rounded up to the next whole batch (default: 1000)")
    p.add_argument("--ray", dest="ray_address", default=None, metavar="ADDRESS",
                   help="run on Ray: 'local' starts a cluster in this process, 'auto' joins the running one, "
                        "or a cluster address (e.g. ray://head:10001)")
    p.add_argument("--actors", type=int, default=1, help="with --ray: pipeline actors (each loads the pipeline once)")
    p.add_argument("--gpu", dest="ray_gpu", action="store_true", help="with --ray: one GPU per actor")
    p.add_argument("--cpus-per-actor", type=float, default=1, help="with --ray: CPUs (torch threads) per actor (default: 1)")
    p.add_argument("--quantize", default=None, choices=QUANTIZE,
                   help="int8: load the pipeline with the decoder's linear layers in int8, for faster CPU inference "
                        "(CPU only; default: as saved, float32)")
    p.add_argument("--code", type=Path, default=None,
                   help="a Python file to import first (custom components' factories), as with spacy train --code")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an OUTPUT this run cannot resume (a finished run, another pipeline's, "
                        "a file of its own) instead of refusing; an interrupted run of the same arguments still resumes")
    p.add_argument("--review-below", nargs=2, metavar=("P", "REVIEW.jsonl"), default=None,
                   help="also write REVIEW.jsonl: the documents with an entity scored below P (the other candidates "
                        "do not count), least confident first, as Prodigy ner.manual tasks (needs a pipeline with "
                        "entity probabilities)")
    p.add_argument("--no-progress", dest="progress_bar", action="store_false", help="no progress bar")
    return p.parse_args(argv)


def review_option(values: Optional[List[str]]) -> Optional[Tuple[float, Path]]:
    """--review-below's two strings as (P, REVIEW); P's range is checked with the other arguments."""
    if values is None:
        return None
    below, review = values
    try:
        return float(below), Path(review)
    except ValueError:
        raise AnnotateError(f"{REVIEW_P}, got {below!r}") from None


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    try:
        review_below = review_option(args.review_below)
        run(args.pipeline, args.input, args.output, input_format=args.input_format, text_key=args.text_key,
            entities_key=args.entities_key, batch_size=args.batch_size, gpu_id=args.gpu_id, n_process=args.n_process,
            skip_bad_lines=args.skip_bad_lines, docbin=args.docbin, checkpoint_every=args.checkpoint_every,
            ray_address=args.ray_address, actors=args.actors, ray_gpu=args.ray_gpu,
            cpus_per_actor=args.cpus_per_actor, max_line_bytes=args.max_line_bytes, code=args.code, progress_bar=args.progress_bar,
            overwrite=args.overwrite, review_below=review_below, quantize=args.quantize)
    except AnnotateError as err:
        report(f"error: {err}")
        return 1
    return 0
