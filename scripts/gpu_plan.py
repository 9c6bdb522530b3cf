"""How many SmolLM2 runs scripts/gpu_full.sh starts at once on the GPU so that they
finish by its deadline.

    python scripts/gpu_plan.py CAP ELAPSED_S DEADLINE_S STEPS SINGLE_PACE_S LONGEST_S [PROBE]

Prints the largest number of runs, at most CAP, expected to finish within DEADLINE_S
of the script's start when ELAPSED_S have gone (0: none would). PROBE is the probe's
"RUNS_AT_ONCE SECONDS_PER_STEP INIT_SECONDS" (its probe.txt); without it only one run
at a time is judged, by LONGEST_S, the longest finished run's wall time (0: unknown).
"""
import sys
from typing import Optional


def run_time(n: int, steps: int, single_pace: float, longest: float, probe: Optional[str]) -> Optional[float]:
    """A run's expected wall time with n at once: its initialisation, 1.1 x steps at
    the pace of n at once (evaluations and saves add ~10%) and 30 s of test scoring.
    The pace of n is the probe's scaled by n / probed runs (the card's time shared),
    but no faster than one run alone."""
    if probe:
        probed, pace, init = probe.split()
        return float(init) + 1.1 * steps * max(single_pace, float(pace) * n / int(probed)) + 30
    if n == 1 and longest > 0:
        return longest
    return None


def wave_size(cap: int, elapsed: float, deadline: float, steps: int, single_pace: float, longest: float,
              probe: Optional[str] = None) -> int:
    fits = [n for n in range(1, cap + 1)
            if (t := run_time(n, steps, single_pace, longest, probe)) is not None and elapsed + t <= deadline]
    return max(fits, default=0)


if __name__ == "__main__":
    cap, elapsed, deadline, steps = (int(v) for v in sys.argv[1:5])
    print(wave_size(cap, elapsed, deadline, steps, float(sys.argv[5]), float(sys.argv[6]),
                    sys.argv[7] if len(sys.argv) > 7 and sys.argv[7].strip() else None))
