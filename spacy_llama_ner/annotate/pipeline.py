"""Finding, fingerprinting and loading the pipeline a run annotates with."""
import hashlib
from pathlib import Path
from typing import Optional

from .records import AnnotateError

# --quantize's values: the transformer's `quantize` setting, applied when the pipeline loads.
QUANTIZE = ("int8",)


def pipeline_location(pipeline: str) -> str:
    """An absolute directory, or the name of an installed pipeline package."""
    from spacy.util import is_package

    if Path(pipeline).exists():
        return str(Path(pipeline).resolve())
    if is_package(pipeline):
        return pipeline
    raise AnnotateError(f"pipeline not found: {pipeline} (a directory from `spacy train` or an installed package name)")


def pipeline_root(pipeline: str) -> Path:
    root = Path(pipeline)
    if not root.exists():
        from spacy.util import get_package_path

        root = get_package_path(pipeline)
    return root


def pipeline_fingerprint(pipeline: str) -> str:
    """A digest of the names, sizes and modification times of the pipeline's files."""
    root = pipeline_root(pipeline)
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def pipeline_config_path(pipeline: str) -> Path:
    root = pipeline_root(pipeline)
    path = root / "config.cfg"
    if not path.exists():  # an installed package keeps its data one directory down
        path = next(iter(sorted(root.glob("*/config.cfg"))), path)
    return path


def pipeline_batch_size(pipeline: str) -> int:
    """[nlp] batch_size of the pipeline's config: the batch size `nlp.pipe` uses by default."""
    from spacy.util import load_config

    path = pipeline_config_path(pipeline)
    try:
        size = load_config(path, interpolate=False)["nlp"].get("batch_size")
    except Exception as err:  # a missing or unreadable config fails again, named, when the pipeline loads
        raise AnnotateError(f"cannot read {path}: {err}") from None
    return int(size) if isinstance(size, int) and size > 0 else 1000


def import_code(code: Optional[str]) -> None:
    """Run the Python file `code` (custom components' factories), as spaCy's --code does."""
    if code is None:
        return
    from spacy.util import import_file

    if not Path(code).is_file():
        raise AnnotateError(f"--code {code}: file not found")
    try:
        import_file("python_code", code)
    except Exception as err:
        raise AnnotateError(f"--code {code}: the file fails on import ({type(err).__name__}: {err})") from None


def quantize_override(quantize: Optional[str]) -> dict:
    """The config override that loads the pipeline with [components.transformer.model]
    quantize = `quantize` (None: as saved, float32)."""
    return {"components": {"transformer": {"model": {"quantize": quantize}}}} if quantize else {}


def load_pipeline(pipeline: str, gpu_id: int, code: Optional[str] = None, quantize: Optional[str] = None):
    """The loaded pipeline, on GPU `gpu_id` (-1: the CPU), with the transformer's
    `quantize` setting (None: as saved); a failure is an AnnotateError."""
    import spacy

    import_code(code)

    if gpu_id >= 0:
        try:
            spacy.require_gpu(gpu_id)
        except Exception as err:  # thinc raises ValueError without CuPy or a visible GPU
            raise AnnotateError(f"--gpu-id {gpu_id}: no GPU to run on ({err}); --gpu-id -1 runs on the CPU") from None
    try:
        return spacy.load(pipeline, config=quantize_override(quantize))
    except Exception as err:  # a damaged file fails in many ways; name the pipeline and the reason
        raise AnnotateError(f"cannot load pipeline {pipeline!r}: {type(err).__name__}: {err}") from None


def require_entity_scores(pipeline: str, code: Optional[str] = None) -> None:
    """An AnnotateError saying how to get entity probabilities unless the pipeline gives them.
    Asked of its components built from the config, their weights not loaded: quick, before
    anything is written, and possible on Ray's driver, which loads no pipeline."""
    from spacy.util import load_config, load_model_from_config

    from ..confidence.spans import EntityScoresUnavailable, require_scores

    import_code(code)
    path = pipeline_config_path(pipeline)
    try:
        nlp = load_model_from_config(load_config(path))
    except Exception as err:  # as in load_pipeline: name the pipeline and the reason
        raise AnnotateError(f"cannot build pipeline {pipeline!r} from {path}: {type(err).__name__}: {err}") from None
    try:
        require_scores(nlp)
    except EntityScoresUnavailable as err:
        raise AnnotateError(f"--review-below needs entity probabilities: {err}") from None


def load_tokenizer(pipeline: str):
    """The pipeline's tokenizer, read from its files without building any component."""
    import spacy
    from spacy.util import load_config

    components = load_config(pipeline_config_path(pipeline))["nlp"]["pipeline"]
    return spacy.load(pipeline, exclude=components).tokenizer
