"""Run scripts/evaluate_run.py for every trained pipeline (one process each, so
each peak memory figure is its own); each run's scores go to TRAINING_DIR/NAME/test.json.

    python scripts/evaluate_all.py TRAINING_DIR CORPUS.spacy [--gpu-id N] [--only NAME ...]

`--only` (last) scores just those runs.
"""
import subprocess
import sys
from pathlib import Path


def main(training_dir: str, corpus: str, *args: str) -> None:
    args, only = (args[: args.index("--only")], args[args.index("--only") + 1 :]) if "--only" in args else (args, ())
    runs = sorted(p.parent for p in Path(training_dir).glob("*/run.json"))
    if not runs:
        raise SystemExit(f"no trained runs in {training_dir}")
    if only:
        missing = sorted(set(only) - {run.name for run in runs})
        if missing:
            raise SystemExit(f"--only: no trained run {', '.join(missing)} in {training_dir} (no NAME/run.json)")
        runs = [run for run in runs if run.name in only]
    script = Path(__file__).with_name("evaluate_run.py")
    for run in runs:
        output = run / "test.json"
        subprocess.run([sys.executable, str(script), str(run / "model-best"), corpus, str(output), *args], check=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
