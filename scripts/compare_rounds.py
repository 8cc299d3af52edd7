#!/usr/bin/env python3
"""Repeated same-run comparisons against FlashMLA, summarised by medians.

On a power-capped GPU one flashmla-bench run is a noisy sample for the long
128-head cases: the five graph replays of a case agree to 0.3%, but two runs
of the same binary differ by up to 20% (D03-D06 on the H200 this project is
measured on), depending on the power state the previous case left behind.
This script runs the comparison ROUNDS times, alternating which of the two
implementations is timed first (--flashmla-second on every other round, so
neither always runs on a hotter GPU), and reports per case the median times,
the median of the per-round ratios and their range.

Run scripts/compare_flashmla.sh first: it builds build-peer (FlashMLA's own
kernels built in) and verifies every case once; the rounds here only time.

    scripts/compare_rounds.py [--bench PATH] [--rounds N] [--out DIR] [flashmla-bench flags, e.g. --case D01,D03]

Writes DIR/round-K.json and DIR/round-K.log (each run's results file and
output) and DIR/rounds.json (the summary), and prints the summary table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

PEER_SUFFIX = "/FlashMLA"


def round_times(results):
    """{case: (ours_us, flashmla_us)} of one results file, for the cases where
    both implementations ran."""
    ours, peer = {}, {}
    for row in results.get("cases", []):
        if row.get("status") != "ok" or row.get("time_us") is None:
            continue
        name = row["case"]
        if name.endswith(PEER_SUFFIX):
            peer[name[: -len(PEER_SUFFIX)]] = float(row["time_us"])
        else:
            ours[name] = float(row["time_us"])
    return {case: (ours[case], peer[case]) for case in ours if case in peer}


def aggregate(rounds):
    """Summary of several results files (dicts as flashmla-bench writes them).

    Per case present in every round: median times, median / min / max of the
    per-round ratio (FlashMLA time / ours: above 1 means ours is faster).
    Geometric mean of the median ratios per case-name prefix letter (D, S, P)
    and over all cases."""
    if not rounds:
        raise ValueError("no rounds to aggregate")
    per_round = [round_times(r) for r in rounds]
    common = set(per_round[0])
    for times in per_round[1:]:
        common &= set(times)
    cases = []
    for case in sorted(common):
        ours = [times[case][0] for times in per_round]
        peer = [times[case][1] for times in per_round]
        ratios = [p / o for o, p in zip(ours, peer)]
        cases.append({
            "case": case,
            "rounds": len(ratios),
            "ours_us": statistics.median(ours),
            "flashmla_us": statistics.median(peer),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        })
    geomean = {}
    groups = {}
    for c in cases:
        groups.setdefault(c["case"][0], []).append(c["ratio"])
    if cases:
        groups["all"] = [c["ratio"] for c in cases]
    for name, ratios in groups.items():
        geomean[name] = statistics.geometric_mean(ratios)
    return {"cases": cases, "geomean": geomean}


def format_table(summary):
    lines = ["case   ours us  FlashMLA us  ratio (median)  range"]
    for c in summary["cases"]:
        lines.append("%-5s %9.2f  %11.2f  %13.3fx  %.3f-%.3f" % (
            c["case"], c["ours_us"], c["flashmla_us"], c["ratio"], c["ratio_min"], c["ratio_max"]))
    lines.append("geometric mean of the median ratios: " + ", ".join(
        "%s %.3fx" % (k, v) for k, v in sorted(summary["geomean"].items())))
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default="build-peer/bench/flashmla-bench")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", default="build-peer/rounds")
    args, bench_flags = parser.parse_known_args(argv)
    if args.rounds < 1:
        parser.error("--rounds needs a positive count, got %d" % args.rounds)
    if not os.access(args.bench, os.X_OK):
        parser.error("no flashmla-bench at %s: run scripts/compare_flashmla.sh first" % args.bench)
    os.makedirs(args.out, exist_ok=True)
    rounds = []
    for k in range(args.rounds):
        path = os.path.join(args.out, "round-%d.json" % (k + 1))
        cmd = [args.bench, "--against-flashmla", "--no-verify", "--results", path] + bench_flags
        if k % 2 == 1:
            cmd.insert(2, "--flashmla-second")
        log_path = os.path.join(args.out, "round-%d.log" % (k + 1))
        with open(log_path, "w") as log:
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            print("compare_rounds: round %d failed (exit %d, see %s): %s" %
                  (k + 1, done.returncode, log_path, " ".join(cmd)), file=sys.stderr)
            return 1
        with open(path) as f:
            rounds.append(json.load(f))
    summary = aggregate(rounds)
    summary["meta"] = rounds[0].get("meta", {})
    summary["rounds"] = args.rounds
    with open(os.path.join(args.out, "rounds.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
