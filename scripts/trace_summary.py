#!/usr/bin/env python3
"""Where a dense decode call's time goes, from the phase stamps of a
measurement build (cmake -DFLASHMLA_TRACE=ON; src/device/trace.cuh).

  FLASHMLA_TRACE_DUMP=/tmp/t.csv build/bench/flashmla-bench --case D13 --no-verify
  scripts/trace_summary.py /tmp/t.csv

The stamps are those of the last call (the last graph replay's last call).
Times are microseconds from the first CTA's entry into the decode kernel:
for each phase, how many CTAs reached it and when the first, the median and
the last did; then the median per-CTA time between consecutive phases, and
the gap between the decode grid's last exit and the combine's first CTA
past its dependency wait.
"""

import argparse
import csv
import statistics
import sys

DECODE, COMBINE = 0, 1
PHASES = {
    DECODE: {
        0: "entry",
        1: "barriers ready, previous grid done",
        2: "first q landed",
        3: "first KV block landed",
        4: "first piece's blocks done",
        5: "first piece stored (score warpgroup)",
        6: "first piece stored (value warpgroup)",
        10: "producer's last load issued",
        7: "score warpgroup done",
        8: "value warpgroup done",
        9: "exit",
    },
    COMBINE: {
        0: "entry",
        1: "decode grid done (after the dependency wait)",
        2: "warp 0's row merged",
    },
}
KERNEL_NAMES = {DECODE: "dense_decode", COMBINE: "combine"}
# Per-CTA steps of the decode kernel worth a median: (from, to).
STEPS = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 7), (7, 9)]


def read(path):
    """{kernel: {cta: {slot: ns}}} from the CSV the library writes at exit."""
    stamps = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            k, cta, slot, ns = int(row["kernel"]), int(row["cta"]), int(row["slot"]), int(row["ns"])
            stamps.setdefault(k, {}).setdefault(cta, {})[slot] = ns
    return stamps


def summarize(stamps):
    lines = []
    decode = stamps.get(DECODE, {})
    if not decode:
        return ["no dense decode stamps (was the build configured with -DFLASHMLA_TRACE=ON, and did a decode run?)"]
    t0 = min(s[0] for s in decode.values() if 0 in s)
    us = lambda ns: (ns - t0) / 1000.0
    lines.append(f"{'kernel':<13} {'phase':<46} {'CTAs':>5} {'first':>9} {'median':>9} {'last':>9}  (us)")
    for k in (DECODE, COMBINE):
        ctas = stamps.get(k, {})
        for slot, name in PHASES[k].items():
            times = sorted(us(s[slot]) for s in ctas.values() if slot in s)
            if times:
                lines.append(f"{KERNEL_NAMES[k]:<13} {name:<46} {len(times):>5} {times[0]:>9.2f} "
                             f"{statistics.median(times):>9.2f} {times[-1]:>9.2f}")
    lines.append("")
    lines.append("median per-CTA step of the decode kernel (us):")
    for a, b in STEPS:
        deltas = [(s[b] - s[a]) / 1000.0 for s in decode.values() if a in s and b in s]
        if deltas:
            lines.append(f"  {PHASES[DECODE][a]} -> {PHASES[DECODE][b]}: {statistics.median(deltas):.2f}")
    # Under PDL the combine's CTAs enter while the decode grid still runs
    # (as SMs free up), so the gap that matters is from the decode's last
    # exit to the combine's first CTA past its dependency wait.
    exits = [s[9] for s in decode.values() if 9 in s]
    ready = [s[1] for s in stamps.get(COMBINE, {}).values() if 1 in s]
    if exits and ready:
        gap_us = (min(ready) - max(exits)) / 1000.0
        lines.append(f"combine's first ready (past its wait) - decode's last exit: {gap_us:.2f} us")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="the file FLASHMLA_TRACE_DUMP named")
    args = parser.parse_args()
    print("\n".join(summarize(read(args.csv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
