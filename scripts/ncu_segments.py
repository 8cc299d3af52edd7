#!/usr/bin/env python3
"""Where a kernel's warps wait, by straight-line segment of its SASS.

Reads the source page of an Nsight Compute report as CSV
(`ncu -i REP --page source --csv --print-source sass > src.csv`) and cuts the
SASS into segments that end at a synchronization point: an mbarrier wait
(SYNCS.PHASECHK), a named barrier (BAR.SYNC / BAR.ARV), a wgmma wait
(WARPGROUP.DEPBAR) or the last wgmma of a batch (HGMMA ... gsb0). A stall
sampled on the instruction after a barrier is time spent waiting at it, so a
segment's samples are the time from the previous synchronization point to
the end of this one. Prints each segment's share of all samples and, with
--cycles-per-iter C --warps-share W, what that share is in cycles of one
loop iteration of the warps it runs on (C = launch cycles / iterations per
CTA; W = the fraction of the CTA's warps that run the segment, e.g. 0.5 for
one of two warpgroups).

  scripts/ncu_segments.py src.csv [--min-share 0.5] [--cycles-per-iter C --warps-share W] [--top N]
"""

import argparse
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
SYNC_MARKS = ("SYNCS.PHASECHK", "BAR.SYNC", "BAR.ARV", "WARPGROUP.DEPBAR", "EXIT")


def number(cell):
    """A numeric cell of ncu's CSV ("1,234"; "" or "-" when not applicable)."""
    return float(cell.replace(",", "")) if cell not in ("", "-") else 0.0


def read_source_csv(path):
    """The instruction rows: (address offset, SASS text, samples, {stall reason: samples})."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f)]
    header_at = next((i for i, r in enumerate(rows) if r and r[0] == "Address"), None)
    if header_at is None:
        raise ValueError(f"{path}: no 'Address' header row (expected ncu --page source --csv output)")
    header = rows[header_at]
    col = {name: j for j, name in enumerate(header)}
    for needed in ("Address", "Source", SAMPLES):
        if needed not in col:
            raise ValueError(f"{path}: no '{needed}' column")
    reasons = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    out = []
    base = None
    for r in rows[header_at + 1:]:
        if len(r) < len(header) or not r[0].startswith("0x"):
            continue
        address = int(r[col["Address"]], 16)
        base = address if base is None else base
        stalls = {h[len("stall_"):]: number(r[col[h]]) for h in reasons}
        out.append((address - base, r[col["Source"]].strip(), number(r[col[SAMPLES]]), stalls))
    return out


def is_sync_point(sass):
    return any(m in sass for m in SYNC_MARKS) or ("HGMMA" in sass and "gsb0" in sass)


def segments(instructions):
    """Consecutive instructions up to and including each synchronization point."""
    out = []
    current = []
    for ins in instructions:
        current.append(ins)
        if is_sync_point(ins[1]):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def summarize(instructions, min_share=0.5, cycles_per_iter=None, warps_share=None):
    total = sum(i[2] for i in instructions)
    lines = [f"total samples {total:.0f}"]
    if total == 0:
        return lines
    for seg in segments(instructions):
        samples = sum(i[2] for i in seg)
        share = 100.0 * samples / total
        if share < min_share:
            continue
        reasons = {}
        for i in seg:
            for k, v in i[3].items():
                reasons[k] = reasons.get(k, 0.0) + v
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:2]
        why = " ".join(f"{k}:{100.0 * v / samples:.0f}%" for k, v in top if v > 0)
        cycles = ""
        if cycles_per_iter is not None and warps_share:
            cycles = f" ~{share / 100.0 / warps_share * cycles_per_iter:6.0f} cyc/iter"
        lines.append(f"{seg[0][0]:6x}-{seg[-1][0]:6x} {share:5.1f}%{cycles} {len(seg):4d} instr"
                     f"  [{why}]  ends {seg[-1][1][:60]}")
    return lines


def top_instructions(instructions, n):
    total = sum(i[2] for i in instructions) or 1.0
    ranked = sorted(instructions, key=lambda i: -i[2])[:n]
    return [f"{100.0 * i[2] / total:5.2f}% {i[0]:6x} {i[1][:64]}" for i in ranked]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--min-share", type=float, default=0.5, help="hide segments under this %% of samples")
    ap.add_argument("--cycles-per-iter", type=float)
    ap.add_argument("--warps-share", type=float)
    ap.add_argument("--top", type=int, default=0, help="also list the N instructions with most samples")
    a = ap.parse_args(argv)
    if (a.cycles_per_iter is None) != (a.warps_share is None):
        ap.error("--cycles-per-iter and --warps-share go together")
    if a.warps_share is not None and not 0 < a.warps_share <= 1:
        ap.error(f"--warps-share: expected a fraction in (0, 1], got {a.warps_share}")
    try:
        instructions = read_source_csv(a.csv)
    except (OSError, ValueError) as e:
        print(f"ncu_segments: {e}", file=sys.stderr)
        return 2
    print("\n".join(summarize(instructions, a.min_share, a.cycles_per_iter, a.warps_share)))
    if a.top:
        print("\n".join(top_instructions(instructions, a.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
