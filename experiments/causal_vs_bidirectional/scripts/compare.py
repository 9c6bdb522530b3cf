"""Put the trained pipelines side by side: one Markdown table, one PNG figure.

    python scripts/compare.py RUNS_DIR OUTPUT.md OUTPUT.png [--groups NAME,NAME,...]

Each run is a folder RUNS_DIR/NAME-sN (N = seed) with run.json (training, from
scripts/train_run.py), test.json (test set, from scripts/evaluate_run.py) and
train_log.jsonl (spaCy's training log). Runs of one NAME are grouped; the table
shows the mean and, with more than one seed, the min-max spread. `--groups` keeps
those groups only, in that order (default: every group, by name). Below the table,
each group against causal and against bidirectional. Every figure is read from
those files.
"""
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean


def read_log(path: Path):
    """A JSON-lines log (spaCy's training log: one dict per evaluation), [] if absent."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_step(run_dir: Path) -> int:
    """The step a run started from: its run.json's `init_from_step` where it continued
    another run's pipeline, else 0."""
    run_file = run_dir / "run.json"
    return (json.loads(run_file.read_text()).get("init_from_step") or 0) if run_file.is_file() else 0


def load_runs(runs_dir: Path):
    groups = defaultdict(list)
    for test_file in sorted(runs_dir.glob("*/test.json")):
        run_dir = test_file.parent
        if not (run_dir / "run.json").exists():
            continue
        group = re.sub(r"-s\d+$", "", run_dir.name)
        groups[group].append({
            "name": run_dir.name,
            "test": json.loads(test_file.read_text()),
            "train": json.loads((run_dir / "run.json").read_text()),
            "log": read_log(run_dir / "train_log.jsonl"),
        })
    return groups


def steps(run) -> str:
    """'best/last' step of the run, from its training log."""
    if not run["log"]:
        return "?"
    best = max(run["log"], key=lambda entry: entry["score"])
    return f"{best['step']}/{run['log'][-1]['step']}"


def spread(values, scale=1.0, fmt="{:.1f}"):
    values = [v * scale for v in values]
    text = fmt.format(mean(values))
    if len(values) > 1:
        text += f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
    return text


def table(groups) -> str:
    types = sorted({t for runs in groups.values() for r in runs for t in r["test"]["ents_per_type"]})
    head = ["pipeline", "seeds", "test F1", *[f"{t} F1" for t in types], "dev F1", "steps best/last", "date",
            "train time (s)",
            "infer words/s", "peak RSS train (MB)", "peak RSS infer (MB)", "params total", "params trainable"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group, runs in groups.items():
        per_type = [spread([r["test"]["ents_per_type"].get(t, {}).get("f", 0.0) for r in runs], 100) for t in types]
        rows.append("| " + " | ".join([
            group,
            str(len(runs)),
            spread([r["test"]["ents_f"] for r in runs], 100),
            *per_type,
            spread([r["train"]["dev_scores"]["ents_f"] for r in runs], 100),
            ", ".join(steps(r) for r in runs),
            ", ".join(sorted({r["train"].get("started", "?")[:10] for r in runs})),
            spread([r["train"]["train_wall_s"] for r in runs], fmt="{:.0f}"),
            spread([r["test"]["words_per_second"] for r in runs], fmt="{:.0f}"),
            spread([r["train"]["peak_rss_mb"] for r in runs], fmt="{:.0f}"),
            spread([r["test"]["peak_rss_mb"] for r in runs], fmt="{:.0f}"),
            f"{runs[0]['test']['parameters_total']:,}",
            f"{runs[0]['test']['parameters_trainable']:,}",
        ]) + " |")
    return "\n".join(rows) + "\n"


def signed(points: float) -> str:
    """A difference to one decimal with its sign; one that rounds to zero is +0.0, not -0.0."""
    return f"{round(points, 1) + 0.0:+.1f}"


def differences(groups, reference: str) -> str:
    """Each pipeline against the reference (means over seeds): the figures the
    discussion quotes, computed here rather than typed."""
    if reference not in groups or len(groups) < 2:
        return ""
    mean_of = lambda runs, get: mean(get(r) for r in runs)
    test_f1 = lambda r: 100 * r["test"]["ents_f"]
    dev_f1 = lambda r: 100 * r["train"]["dev_scores"]["ents_f"]
    speed = lambda r: r["test"]["words_per_second"]
    base = groups[reference]
    rows = [f"| against {reference} | test F1 (points) | dev F1 (points) | inference words/s (ratio) |", "|---|---|---|---|"]
    for group, runs in groups.items():
        if group != reference:
            rows.append(
                f"| {group} | {signed(mean_of(runs, test_f1) - mean_of(base, test_f1))} "
                f"| {signed(mean_of(runs, dev_f1) - mean_of(base, dev_f1))} "
                f"| {mean_of(runs, speed) / mean_of(base, speed):.2f}× |"
            )
    return "\n" + "\n".join(rows) + "\n"


def figure(groups, path: Path) -> None:
    names = list(groups)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # only here: read_log's users need no plotting

    fig, (ax_f1, ax_speed) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, name in enumerate(names):
        f1s = [100 * r["test"]["ents_f"] for r in groups[name]]
        ax_f1.bar(i, mean(f1s), color="C%d" % i, alpha=0.7)
        ax_f1.scatter([i] * len(f1s), f1s, color="black", zorder=3, s=14)
        speeds = [r["test"]["words_per_second"] for r in groups[name]]
        ax_speed.bar(i, mean(speeds), color="C%d" % i, alpha=0.7)
        ax_speed.scatter([i] * len(speeds), speeds, color="black", zorder=3, s=14)
    for ax, title in ((ax_f1, "test entity F1 (dots: seeds)"), (ax_speed, "inference words/s (log)")):
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_title(title)
    ax_speed.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def select(groups, names):
    missing = [name for name in names if name not in groups]
    if missing:
        raise SystemExit(f"--groups: no scored runs named {', '.join(missing)}-sN; found: {', '.join(groups)}")
    return {name: groups[name] for name in names}


def main(runs_dir, output_md, output_png, *args):
    groups = load_runs(Path(runs_dir))
    if not groups:
        raise SystemExit(f"no runs with both {runs_dir}/NAME/run.json and {runs_dir}/NAME/test.json")
    if args[:1] == ("--groups",) and len(args) == 2:
        groups = select(groups, args[1].split(","))
    elif args:
        raise SystemExit(f"unexpected arguments {' '.join(args)}; usage: {__doc__.splitlines()[2].strip()}")
    Path(output_md).parent.mkdir(parents=True, exist_ok=True)
    report = table(groups) + differences(groups, "causal") + differences(groups, "bidirectional")
    Path(output_md).write_text(report)
    figure(groups, Path(output_png))
    print(report)


if __name__ == "__main__":
    main(*sys.argv[1:])
