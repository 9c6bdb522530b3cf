"""Train one pipeline with `spacy train` and record what it cost.

    python scripts/train_run.py CONFIG OUTPUT_DIR [--gpu-id N] [--key value ...]

Extra `--section.key value` arguments are config overrides, as for `spacy train`.
Writes OUTPUT_DIR/run.json: wall time, peak memory (RSS on CPU, allocated on GPU),
seed, dev scores and overrides.
"""
import json
import resource
import sys
import time
from pathlib import Path

from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train


def main(config: str, output: str, *args: str) -> None:
    args = list(args)
    gpu_id = -1
    if "--gpu-id" in args:
        i = args.index("--gpu-id")
        gpu_id = int(args[i + 1])
        del args[i : i + 2]
    overrides = parse_config_overrides(args)
    start = time.time()
    train(Path(config), Path(output), use_gpu=gpu_id, overrides=overrides)
    wall = time.time() - start
    run = {
        "config": config,
        "overrides": overrides,
        "seed": overrides.get("system.seed"),
        "train_wall_s": round(wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "device": "cpu" if gpu_id < 0 else f"gpu{gpu_id}",
    }
    if gpu_id >= 0:
        import torch

        run["peak_gpu_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    meta = json.loads((Path(output) / "model-best" / "meta.json").read_text())
    run["dev_scores"] = {k: meta["performance"][k] for k in ("ents_f", "ents_p", "ents_r")}
    (Path(output) / "run.json").write_text(json.dumps(run, indent=2))
    print(json.dumps(run))


if __name__ == "__main__":
    main(*sys.argv[1:])
