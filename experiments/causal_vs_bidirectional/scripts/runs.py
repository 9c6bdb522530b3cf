"""The study's one summary of runs, results/runs.jsonl, and what reads and writes it.

Every other script of the study imports this module (scripts/ is on the path when a
script runs as `python scripts/X.py`). One JSON object per line, one line per run:

    setting          where the run belongs: "demo" (2,000 sentences, the demo budget),
                     "full" (all of CoNLL-2003 on a CPU), "gpu" (all of it on a GPU),
                     "gpu-1b" (the Llama-3.2-1B shape, random weights)
    name, group      "bidirectional-s0" and "bidirectional": a group is a name without
                     its seed suffix; a table row is a group (mean over its seeds)
    seed, started    the seed the pipeline trained with; when the run started
    machine, device, gpu
    config, overrides, command, init_from, start_step
                     what reproduces it: the config (relative to the study folder),
                     every override, the training command where it was recorded;
                     start_step: the step of init_from it continued from
    steps, best_step, train_s, s_per_step, train_peak_rss_mb, train_peak_gpu_mb
    dev              entity P/R/F of model-best on the dev set (0-1)
    dev_curve        [[step, dev entity F1 in %], ...], one pair per evaluation
    test             entity P/R/F, per_type {LABEL: {p, r, f}}, words_per_s,
                     peak_rss_mb, params_total, params_trainable, corpus (absent
                     until the run is scored)
    note             anything a reader of the figures must know (shared cores, ...)

A run is keyed by (setting, name): recording it again replaces its line.

    python scripts/runs.py record RUN_DIR --setting full [--name NAME] [--note TEXT]

records a finished training directory (its run.json and train_log.jsonl, written by
scripts/train.py, and test.json, written by scripts/evaluate.py, where present);

    python scripts/runs.py reproduce SETTING/NAME

prints the commands that train and score that run again from its record (its config
and every override); `python scripts/runs.py list` lists the runs.
"""
import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional

STUDY = Path(__file__).resolve().parent.parent
RUNS_FILE = Path("results") / "runs.jsonl"
SETTINGS = ("demo", "full", "gpu", "gpu-1b")
# the key order of a record, so that the file reads the same whoever wrote it
FIELDS = (
    "setting", "name", "group", "seed", "started", "machine", "device", "gpu", "config", "overrides", "command",
    "init_from", "start_step", "steps", "best_step", "train_s", "s_per_step", "train_peak_rss_mb",
    "train_peak_gpu_mb", "dev", "dev_curve", "test", "note",
)


def group_of(name: str) -> str:
    """'bidirectional-s1' -> 'bidirectional': runs of one group differ only in the seed."""
    return re.sub(r"-s\d+$", "", name)


def read_log(path: Path) -> List[dict]:
    """A JSON-lines log (spaCy's training log: one dict per evaluation), [] if absent."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_runs(path: Path = RUNS_FILE, setting: Optional[str] = None) -> List[dict]:
    """The records of runs.jsonl in file order (one setting's only, if given)."""
    path = Path(path)
    if not path.exists():
        return []
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except json.JSONDecodeError as err:
            raise SystemExit(f"{path}:{number}: not JSON ({err})")
        missing = [key for key in ("setting", "name") if key not in run]
        if missing:
            raise SystemExit(f"{path}:{number}: a run without {', '.join(missing)}")
        runs.append(run)
    return [run for run in runs if setting is None or run["setting"] == setting]


def write_runs(runs: Iterable[dict], path: Path = RUNS_FILE) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({key: run[key] for key in FIELDS if key in run}, ensure_ascii=False) for run in runs]
    path.write_text("".join(line + "\n" for line in lines))


def upsert(record: dict, path: Path = RUNS_FILE) -> dict:
    """Put record into runs.jsonl: it replaces a run of the same (setting, name) in
    place (keeping that one's note if it has none), or is appended."""
    runs = read_runs(path)
    for i, run in enumerate(runs):
        if (run["setting"], run["name"]) == (record["setting"], record["name"]):
            if "note" in run and "note" not in record:
                record = {**record, "note": run["note"]}
            runs[i] = record
            break
    else:
        runs.append(record)
    write_runs(runs, path)
    return record


def by_group(runs: Iterable[dict]) -> Dict[str, List[dict]]:
    """{group: [runs]}: runs sorted by name, each group where its first run comes
    ('bidirectional-batch250' before 'bidirectional', as 'bidirectional-b...-s0' sorts
    before 'bidirectional-s0')."""
    groups: Dict[str, List[dict]] = {}
    for run in sorted(runs, key=lambda r: r["name"]):
        groups.setdefault(run["group"], []).append(run)
    return groups


def curve(log: List[dict]) -> List[list]:
    """[[step, dev entity F1 in %], ...] from spaCy's training log."""
    return [[entry["step"], round(entry["scores"]["ents_f"], 4)] for entry in log]


def best_step(dev_curve: List[list]) -> Optional[int]:
    """The step of the best dev F1; ties go to the later step, as spaCy saves model-best."""
    return max((f1, step) for step, f1 in dev_curve)[1] if dev_curve else None


def study_path(config: str) -> str:
    """A config path as the study folder sees it: the package's configs live two levels
    up (../../configs/), the CNN's here (configs/ner_cnn.cfg)."""
    config = str(config)
    if config.startswith("configs/") and not (STUDY / config).exists():
        return "../../" + config
    return config


def training_record(run_dir: Path, setting: str, name: Optional[str] = None) -> dict:
    """A record from a training directory's run.json and train_log.jsonl (scripts/train.py)."""
    run_dir = Path(run_dir)
    run_file = run_dir / "run.json"
    if not run_file.is_file():
        raise SystemExit(f"no run.json in {run_dir.resolve()} (scripts/train.py writes it)")
    run = json.loads(run_file.read_text())
    dev_curve = curve(read_log(run_dir / "train_log.jsonl"))
    name = name or run_dir.name
    overrides = {k: v for k, v in run.get("overrides", {}).items() if k != "training.logger.output_file"}
    steps = dev_curve[-1][0] if dev_curve else None
    record = {
        "setting": setting,
        "name": name,
        "group": group_of(name),
        "seed": run.get("seed"),
        "started": run.get("started"),
        "machine": run.get("machine"),
        "device": run.get("device"),
        "gpu": run.get("gpu"),
        "config": study_path(run["config"]),
        "overrides": overrides,
        "command": run.get("command"),
        "init_from": run.get("init_from"),
        "start_step": run.get("init_from_step") or 0,
        "steps": steps,
        "best_step": best_step(dev_curve),
        "train_s": run.get("train_wall_s"),
        # the training loop's seconds per step (evaluations included); older runs
        # recorded only the wall time, initialisation included
        "s_per_step": run.get("loop_s_per_step") or (round(run["train_wall_s"] / steps, 3) if steps else None),
        "train_peak_rss_mb": run.get("peak_rss_mb"),
        "train_peak_gpu_mb": run.get("peak_gpu_allocated_mb"),
        "dev": {k: run["dev_scores"][k] for k in ("ents_f", "ents_p", "ents_r")},
        "dev_curve": dev_curve,
    }
    return {key: value for key, value in record.items() if value is not None or key in ("seed",)}


def test_record(scores: dict) -> dict:
    """The `test` field from scripts/evaluate.py's test.json."""
    per_type = {label: {k: s[k] for k in ("p", "r", "f")} for label, s in sorted(scores["ents_per_type"].items())}
    test = {
        "ents_f": scores["ents_f"], "ents_p": scores["ents_p"], "ents_r": scores["ents_r"], "per_type": per_type,
        "words_per_s": scores.get("words_per_second"), "peak_rss_mb": scores.get("peak_rss_mb"),
        "params_total": scores.get("parameters_total"), "params_trainable": scores.get("parameters_trainable"),
        "corpus": scores.get("corpus"),
    }
    return {k: v for k, v in test.items() if v is not None}


def record_dir(run_dir: Path, setting: str, name: Optional[str] = None, note: Optional[str] = None,
               path: Path = RUNS_FILE) -> dict:
    """Record a finished run directory: run.json + train_log.jsonl, and test.json if scored."""
    record = training_record(run_dir, setting, name)
    test_file = Path(run_dir) / "test.json"
    if test_file.is_file():
        record["test"] = test_record(json.loads(test_file.read_text()))
    if note:
        record["note"] = note
    return upsert(record, path)


def override_value(value) -> str:
    """A config override's value as `spacy train` reads it back from the command line."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if re.fullmatch(r"[\w./:+-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def reproduce(run: dict) -> str:
    """scripts/train.py and scripts/evaluate.py command lines for the run's record: its
    config and every override (the step budget included), into training/SETTING/NAME."""
    output = f"training/{run['setting']}/{run['name']}"
    gpu = ["--gpu-id 0"] if (run.get("device") or "cpu") != "cpu" else []
    first = ["python scripts/train.py", run["config"], output, "--record", run["setting"], *gpu]
    if run.get("init_from"):
        first += ["--init-from", run["init_from"]]
    train = [" ".join(first)] + [f"--{key} {override_value(value)}" for key, value in run["overrides"].items()]
    evaluate = ["python scripts/evaluate.py", run.get("test", {}).get("corpus", "corpus/full/test.spacy"), output,
                "--record", run["setting"], *gpu]
    return " \\\n    ".join(train) + "\n" + " ".join(evaluate)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Record a finished run in results/runs.jsonl, or list the runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    record = sub.add_parser("record", help="record RUN_DIR (run.json, train_log.jsonl, test.json if scored)")
    record.add_argument("run_dir", type=Path)
    record.add_argument("--setting", required=True, choices=SETTINGS)
    record.add_argument("--name", help="default: RUN_DIR's name, e.g. bidirectional-headlr5-batch250-s0")
    record.add_argument("--note", help="what a reader of its figures must know (e.g. shared cores)")
    record.add_argument("--runs", type=Path, default=RUNS_FILE)
    show = sub.add_parser("list", help="one line per run: setting, name, steps, dev and test F1")
    show.add_argument("--runs", type=Path, default=RUNS_FILE)
    again = sub.add_parser("reproduce", help="the commands that train and score SETTING/NAME again")
    again.add_argument("run", metavar="SETTING/NAME")
    again.add_argument("--runs", type=Path, default=RUNS_FILE)
    args = parser.parse_args(argv)
    if args.command == "record":
        run = record_dir(args.run_dir, args.setting, args.name, args.note, args.runs)
        scored = f", test F1 {100 * run['test']['ents_f']:.1f}" if "test" in run else " (not scored yet)"
        print(f"recorded {run['setting']}/{run['name']} in {args.runs}: dev F1 {100 * run['dev']['ents_f']:.1f}{scored}")
    elif args.command == "reproduce":
        setting, _, name = args.run.partition("/")
        found = [run for run in read_runs(args.runs, setting) if run["name"] == name]
        if not found:
            raise SystemExit(f"no run {args.run} in {args.runs} (python scripts/runs.py list)")
        print(reproduce(found[0]))
    else:
        for run in read_runs(args.runs):
            test = f"{100 * run['test']['ents_f']:.1f}" if "test" in run else "-"
            print(f"{run['setting']:7} {run['name']:36} {run.get('steps')!s:>5} steps  dev {100 * run['dev']['ents_f']:.1f}  test {test}")


if __name__ == "__main__":
    sys.exit(main())
