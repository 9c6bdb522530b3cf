"""Package the pipeline with the best *dev* F1 (never chosen on test) with `spacy package`.

    python scripts/package_best.py TRAINING_DIR OUTPUT_DIR [--exclude PREFIX ...]
"""
import json
import subprocess
import sys
from pathlib import Path

from spacy_llama_ner import __version__


def main(training_dir: str, output_dir: str, *args: str) -> None:
    excluded = [args[i + 1] for i, a in enumerate(args) if a == "--exclude"]
    runs = [
        (json.loads(p.read_text())["dev_scores"]["ents_f"], p.parent)
        for p in Path(training_dir).glob("*/run.json")
        if not any(p.parent.name.startswith(e) for e in excluded)
    ]
    if not runs:
        raise SystemExit(f"no trained runs in {training_dir}")
    dev_f1, best = max(runs)
    print(f"best on dev: {best.name} (F1 {dev_f1:.3f})")
    meta = {
        "name": "llama_ner_" + best.name.replace("-", "_"),
        "version": __version__,
        "description": f"spacy-llama-ner pipeline {best.name} (dev F1 {dev_f1:.3f})",
        "requirements": [f"spacy-llama-ner>={__version__}"],
    }
    meta_path = Path(output_dir) / "meta.json"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta))
    subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(best / "model-best"), output_dir,
         "--meta-path", str(meta_path), "--force"],
        check=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
