"""The runs of one setting side by side, from results/runs.jsonl alone.

    python scripts/report.py SETTING [--table OUT.md] [--figure OUT.png]
        [--curves OUT.png] [--curves-table OUT.md] [--groups NAME,NAME,...] [--runs FILE]

SETTING is a record's `setting` (demo, full, gpu, gpu-1b; scripts/runs.py). Runs of one
group (a name without its -sN seed suffix) make one row: the mean and, with more than
one seed, the min-max spread. `--table`: one Markdown table of the scored runs, then
each group against causal and against bidirectional (the differences the README
quotes, computed here rather than typed). `--figure`: test F1 and inference speed per
group. `--curves`: dev F1 against training step for every run (a run that continued
another counts its steps from the other's start); `--curves-table` the same numbers
as a table. `--groups` keeps those groups only, in that order (default: every group).
"""
import argparse
import sys
from pathlib import Path
from statistics import mean

import runs


def steps(run) -> str:
    """'best/last' step of the run, counted from its own start."""
    if run.get("steps") is None:
        return "?"
    return f"{run['best_step']}/{run['steps']}"


def spread(values, scale=1.0, fmt="{:.1f}"):
    values = [v * scale for v in values]
    text = fmt.format(mean(values))
    if len(values) > 1:
        text += f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
    return text


def table(groups) -> str:
    types = sorted({t for group in groups.values() for r in group for t in r["test"]["per_type"]})
    head = ["pipeline", "seeds", "test F1", *[f"{t} F1" for t in types], "dev F1", "steps best/last", "date",
            "train time (s)", "infer words/s", "peak RSS train (MB)", "peak RSS infer (MB)", "params total",
            "params trainable"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, group in groups.items():
        per_type = [spread([r["test"]["per_type"].get(t, {}).get("f", 0.0) for r in group], 100) for t in types]
        rows.append("| " + " | ".join([
            name,
            str(len(group)),
            spread([r["test"]["ents_f"] for r in group], 100),
            *per_type,
            spread([r["dev"]["ents_f"] for r in group], 100),
            ", ".join(steps(r) for r in group),
            ", ".join(sorted({(r.get("started") or "?")[:10] for r in group})),
            spread([r["train_s"] for r in group], fmt="{:.0f}"),
            spread([r["test"]["words_per_s"] for r in group], fmt="{:.0f}"),
            spread([r["train_peak_rss_mb"] for r in group], fmt="{:.0f}"),
            spread([r["test"]["peak_rss_mb"] for r in group], fmt="{:.0f}"),
            f"{group[0]['test']['params_total']:,}",
            f"{group[0]['test']['params_trainable']:,}",
        ]) + " |")
    return "\n".join(rows) + "\n"


def signed(points: float) -> str:
    """A difference to one decimal with its sign; one that rounds to zero is +0.0, not -0.0."""
    return f"{round(points, 1) + 0.0:+.1f}"


def differences(groups, reference: str) -> str:
    """Each group against the reference (means over seeds)."""
    if reference not in groups or len(groups) < 2:
        return ""
    mean_of = lambda group, get: mean(get(r) for r in group)
    test_f1 = lambda r: 100 * r["test"]["ents_f"]
    dev_f1 = lambda r: 100 * r["dev"]["ents_f"]
    speed = lambda r: r["test"]["words_per_s"]
    base = groups[reference]
    rows = [f"| against {reference} | test F1 (points) | dev F1 (points) | inference words/s (ratio) |", "|---|---|---|---|"]
    for name, group in groups.items():
        if name != reference:
            rows.append(
                f"| {name} | {signed(mean_of(group, test_f1) - mean_of(base, test_f1))} "
                f"| {signed(mean_of(group, dev_f1) - mean_of(base, dev_f1))} "
                f"| {mean_of(group, speed) / mean_of(base, speed):.2f}× |"
            )
    return "\n" + "\n".join(rows) + "\n"


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def figure(groups, path: Path) -> None:
    names = list(groups)
    fig, (ax_f1, ax_speed) = plt().subplots(1, 2, figsize=(12, 4.5))
    for i, name in enumerate(names):
        f1s = [100 * r["test"]["ents_f"] for r in groups[name]]
        ax_f1.bar(i, mean(f1s), color="C%d" % i, alpha=0.7)
        ax_f1.scatter([i] * len(f1s), f1s, color="black", zorder=3, s=14)
        speeds = [r["test"]["words_per_s"] for r in groups[name]]
        ax_speed.bar(i, mean(speeds), color="C%d" % i, alpha=0.7)
        ax_speed.scatter([i] * len(speeds), speeds, color="black", zorder=3, s=14)
    for ax, title in ((ax_f1, "test entity F1 (dots: seeds)"), (ax_speed, "inference words/s (log)")):
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_title(title)
    ax_speed.set_yscale("log")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def curves(selected) -> dict:
    """{run name: [(step, dev F1 %), ...]}, steps counted from the first run's start."""
    found = {}
    for run in sorted(selected, key=lambda r: r["name"]):
        offset = run.get("start_step") or 0
        points = [(offset + step, f1) for step, f1 in run.get("dev_curve", [])]
        if points:
            found[run["name"]] = points
    return found


def curves_table(found) -> str:
    all_steps = sorted({step for points in found.values() for step, _ in points})
    rows = ["| step | " + " | ".join(found) + " |", "|" + "---|" * (len(found) + 1)]
    for step in all_steps:
        cells = [next((f"{f1:.1f}" for s, f1 in points if s == step), "") for points in found.values()]
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


MARKERS = "osD^vP*"


def curves_figure(found, path: Path) -> None:
    import matplotlib.ticker

    fig, ax = plt().subplots(figsize=(10, 4.5))
    for i, (name, points) in enumerate(found.items()):
        # Step 0 is the untrained pipeline (F1 ~0); leaving it out keeps the scale readable.
        shown = [(s, f) for s, f in points if s > 0] or points
        # Ten colours repeat from the eleventh run on; the marker keeps each run apart.
        ax.plot(*zip(*shown), color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)], label=name)
    # Runs differ in length (spaCy's CNN recipe runs thousands of steps of small
    # batches, ours 1,000 of 500 words): a log scale keeps the short runs readable.
    longest, shortest = (f(points[-1][0] for points in found.values()) for f in (max, min))
    log_scale = longest >= 4 * max(shortest, 1)
    if log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training step" + (" (log scale)" if log_scale else ""))
    ax.set_ylabel("dev entity F1 (%)")
    ax.set_title("Learning curves (spaCy's training log)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def select(groups, names):
    missing = [name for name in names if name not in groups]
    if missing:
        raise SystemExit(f"--groups: no runs named {', '.join(missing)}-sN; found: {', '.join(groups)}")
    return {name: groups[name] for name in names}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("setting", choices=runs.SETTINGS)
    parser.add_argument("--table", type=Path)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--curves", type=Path)
    parser.add_argument("--curves-table", type=Path)
    parser.add_argument("--groups", help="comma-separated groups, in the order shown")
    parser.add_argument("--runs", type=Path, default=runs.RUNS_FILE)
    args = parser.parse_args(argv)
    selected = runs.read_runs(args.runs, args.setting)
    if not selected:
        raise SystemExit(f"no {args.setting} runs in {args.runs}")
    all_groups = runs.by_group(selected)
    chosen = select(all_groups, args.groups.split(",")) if args.groups else all_groups
    chosen_runs = [run for group in chosen.values() for run in group]
    scored = {name: [r for r in group if "test" in r] for name, group in chosen.items()}
    scored = {name: group for name, group in scored.items() if group}
    if args.table or args.figure:
        if not scored:
            raise SystemExit(f"no scored {args.setting} runs in {args.runs} (scripts/evaluate.py --record adds the scores)")
        if args.groups and len(scored) < len(chosen):
            raise SystemExit(f"--groups: not scored yet: {', '.join(sorted(set(chosen) - set(scored)))}")
    if args.table:
        report = table(scored) + differences(scored, "causal") + differences(scored, "bidirectional")
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(report)
        print(report)
    if args.figure:
        figure(scored, args.figure)
    if args.curves or args.curves_table:
        found = curves(chosen_runs)
        if not found:
            raise SystemExit(f"no dev curves among the {args.setting} runs")
        if args.curves:
            curves_figure(found, args.curves)
        if args.curves_table:
            args.curves_table.parent.mkdir(parents=True, exist_ok=True)
            args.curves_table.write_text(curves_table(found))


if __name__ == "__main__":
    sys.exit(main())
