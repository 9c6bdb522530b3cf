"""Train one pipeline with `spacy train` and record what it cost.

    python scripts/train.py CONFIG OUTPUT_DIR [--gpu-id N] [--max-steps N]
        [--init-from PIPELINE] [--record SETTING] [--note TEXT] [--section.key value ...]

Extra `--section.key value` arguments are config overrides, as for `spacy train`.
`--max-steps N` with N > 0 trains exactly N steps with the learning
rate decaying over them (no early stop: `training.patience` is set to 0, else a run
that starts from a trained pipeline, whose step 0 is already its best, stops after
`patience` steps); 0 (the default) keeps the config's own recipe: it stops
when dev F1 has not improved for `training.patience` steps or at the config's
`training.max_steps`. `--init-from PIPELINE` starts from a trained pipeline's weights
instead of the model's: its components are sourced (spaCy's own mechanism) and
trained again with CONFIG's recipe, e.g. a second, longer schedule.

Writes OUTPUT_DIR/train_log.jsonl (the config's logger: one line per
evaluation) and OUTPUT_DIR/run.json: wall time (also split into initialisation and
the training loop, and the loop's seconds per step), peak memory (RSS on CPU,
allocated on GPU), seed, dev scores, overrides, the command, date and machine.
`--record SETTING` (demo, full, gpu, gpu-1b) also puts the run into the study's
summary, results/runs.jsonl, named after OUTPUT_DIR (scripts/runs.py);
scripts/evaluate.py --record adds its test scores.
"""
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Optional

from spacy.cli._util import parse_config_overrides, setup_gpu, show_validation_error
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as train_nlp
from spacy.util import load_config
from wasabi import msg

import runs


def pop_option(args: list, name: str, default=None):
    if name not in args:
        return default
    i = args.index(name)
    if i + 1 >= len(args):
        msg.fail(f"{name} needs a value", exits=1)
    value = args[i + 1]
    del args[i : i + 2]
    return value


def int_option(args: list, name: str, default: int) -> int:
    value = pop_option(args, name, default)
    try:
        return int(value)
    except ValueError:
        msg.fail(f"{name}: expected a whole number, got {value!r}", exits=1)


def eval_frequency_for(max_steps: int, eval_frequency: int) -> int:
    """An evaluation frequency that divides max_steps, so the last step is evaluated
    (spaCy evaluates only when step % eval_frequency == 0): the divisor closest to
    the wanted frequency, within a factor of two of it, else max_steps itself."""
    divisors = [d for d in range(max(1, eval_frequency // 2), 2 * eval_frequency + 1) if max_steps % d == 0]
    return min(divisors + [max_steps], key=lambda d: abs(d - eval_frequency))


def step_overrides(config: str, max_steps: int, overrides: dict) -> dict:
    """Overrides for a budget of exactly max_steps steps (none for 0): the step cap,
    no early stop, an evaluation at the last step and, where the learning rate is a
    schedule with a horizon, that horizon."""
    if max_steps < 0:
        msg.fail(f"--max-steps: got {max_steps}; allowed values: 0 (until dev F1 stops improving) or a positive number", exits=1)
    if max_steps == 0:
        return {}
    training = load_config(config)["training"]
    wanted = overrides.get("training.eval_frequency", training["eval_frequency"])
    result = {
        "training.max_steps": max_steps,
        "training.max_epochs": 0,
        "training.patience": 0,
        "training.eval_frequency": eval_frequency_for(max_steps, wanted),
    }
    if result["training.eval_frequency"] != wanted:
        msg.info(f"Evaluating every {result['training.eval_frequency']} steps (not {wanted}) so that step {max_steps} is evaluated")
    learn_rate = training["optimizer"]["learn_rate"]
    if isinstance(learn_rate, dict) and "total_steps" in learn_rate:
        result["training.optimizer.learn_rate.total_steps"] = max_steps
    return result


def sourced_config(config: str, pipeline: str, overrides: dict, output: Path) -> Path:
    """CONFIG with every component sourced from PIPELINE, written into OUTPUT."""
    if not (Path(pipeline) / "config.cfg").is_file():
        msg.fail(f"--init-from: no trained pipeline (config.cfg) in {Path(pipeline).resolve()}", exits=1)
    component_overrides = sorted(key for key in overrides if key.startswith("components."))
    if component_overrides:
        msg.fail(f"--init-from: the components come from {pipeline} with their settings; "
                 f"drop the overrides {component_overrides}", exits=1)
    derived = load_config(config)
    available = load_config(Path(pipeline) / "config.cfg")["nlp"]["pipeline"]
    missing = [name for name in derived["nlp"]["pipeline"] if name not in available]
    if missing:
        msg.fail(f"--init-from: {pipeline} has no component {missing}; it has {available}", exits=1)
    for name in derived["nlp"]["pipeline"]:
        derived["components"][name] = {"source": str(pipeline)}
    output.mkdir(parents=True, exist_ok=True)
    path = output / "config_init_from.cfg"
    derived.to_disk(path)
    return path


def source_step(pipeline: str) -> Optional[int]:
    """The step a saved pipeline was trained to, read from its run's log beside it
    (None without one): model-last is the last evaluation's step; model-best is the
    best score's, ties going to the later step as spaCy saves them. Counted from the
    start of training: where that run itself continued another (its run.json's
    `init_from_step`), from that one's start."""
    run_dir = Path(pipeline).parent
    entries = runs.read_log(run_dir / "train_log.jsonl")
    if not entries:
        return None
    if Path(pipeline).name == "model-last":
        step = entries[-1]["step"]
    else:
        step = max((entry["score"], entry["step"]) for entry in entries)[1]
    run_file = run_dir / "run.json"
    start = json.loads(run_file.read_text()).get("init_from_step") or 0 if run_file.is_file() else 0
    return step + start


def train_timed(config_path: Path, output: Path, gpu_id: int, overrides: dict) -> tuple:
    """`spacy train`'s steps (spacy.cli.train.train), timed apart: seconds to
    initialise the pipeline and seconds of the training loop (evaluations and saves
    included)."""
    output.mkdir(parents=True, exist_ok=True)
    setup_gpu(gpu_id)
    start = time.time()
    with show_validation_error(config_path):
        config = load_config(config_path, overrides=overrides, interpolate=False)
    msg.divider("Initializing pipeline")
    with show_validation_error(config_path, hint_fill=False):
        nlp = init_nlp(config, use_gpu=gpu_id)
    msg.good("Initialized pipeline")
    initialised = time.time()
    msg.divider("Training pipeline")
    train_nlp(nlp, output, use_gpu=gpu_id, stdout=sys.stdout, stderr=sys.stderr)
    return initialised - start, time.time() - initialised


def main(config: str, output: str, *args: str) -> None:
    args = list(args)
    gpu_id = int_option(args, "--gpu-id", -1)
    command = " ".join(["python scripts/train.py", config, output, *args])
    max_steps = int_option(args, "--max-steps", 0)
    init_from = pop_option(args, "--init-from")
    record = pop_option(args, "--record")
    note = pop_option(args, "--note")
    if record and record not in runs.SETTINGS:
        msg.fail(f"--record: got {record!r}; the settings are {', '.join(runs.SETTINGS)}", exits=1)
    if not Path(config).is_file():
        msg.fail(f"config file not found: {Path(config).resolve()}", exits=1)
    overrides = parse_config_overrides(args)
    overrides = {**overrides, **step_overrides(config, max_steps, overrides)}
    train_config = sourced_config(config, init_from, overrides, Path(output)) if init_from else Path(config)
    log_path = Path(output) / "train_log.jsonl"
    # spaCy's logger refuses to overwrite a log: a rerun starts a fresh one.
    log_path.unlink(missing_ok=True)
    (Path(output) / "test.json").unlink(missing_ok=True)  # a new model's scores come from evaluate.py
    overrides.setdefault("training.logger.output_file", str(log_path))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    init_s, loop_s = train_timed(train_config, Path(output), gpu_id, overrides)
    last_step = runs.read_log(log_path)[-1]["step"]
    run = {
        "config": config,
        "overrides": overrides,
        "command": command,
        "init_from": init_from,
        # learning curves continue the source's: this run's step 0 is the source's step
        "init_from_step": source_step(init_from) if init_from else None,
        # the seed it trained with, from the config spaCy saved with the pipeline
        "seed": load_config(Path(output) / "model-best" / "config.cfg", interpolate=False)["system"]["seed"],
        "started": started,
        "train_wall_s": round(init_s + loop_s, 1),
        "init_s": round(init_s, 1),
        "loop_s": round(loop_s, 1),
        "loop_s_per_step": round(loop_s / last_step, 3) if last_step else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "device": "cpu" if gpu_id < 0 else f"gpu{gpu_id}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    if gpu_id >= 0:
        import torch

        run["gpu"] = torch.cuda.get_device_name(gpu_id)
        run["peak_gpu_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    meta = json.loads((Path(output) / "model-best" / "meta.json").read_text())
    run["dev_scores"] = {k: meta["performance"][k] for k in ("ents_f", "ents_p", "ents_r")}
    (Path(output) / "run.json").write_text(json.dumps(run, indent=2))
    print(json.dumps(run))
    if record:
        recorded = runs.record_dir(Path(output), record, note=note)
        msg.good(f"Recorded {record}/{recorded['name']} in {runs.RUNS_FILE}")


if __name__ == "__main__":
    main(*sys.argv[1:])
