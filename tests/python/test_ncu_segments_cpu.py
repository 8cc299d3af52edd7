"""scripts/ncu_segments.py: cutting an ncu source-page CSV into segments that
end at synchronization points, and their shares of the stall samples (pure
Python, no GPU)."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "ncu_segments.py")

_spec = importlib.util.spec_from_file_location("ncu_segments", SCRIPT)
ncu_segments = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ncu_segments)

HEADER = ["Address", "Source", "Warp Stall Sampling (All Samples)", "Instructions Executed",
          "stall_barrier", "stall_long_sb", "stall_barrier (Not Issued)"]


def write_csv(path, instructions):
    """instructions: (sass, samples, barrier, long_sb), at addresses 0x1000 + 16 i."""
    lines = ['"Kernel Name","k",']
    lines.append(",".join(f'"{h}"' for h in HEADER))
    for i, (sass, samples, barrier, long_sb) in enumerate(instructions):
        cells = [hex(0x1000 + 16 * i), f"      {sass}", str(samples), "1", str(barrier), str(long_sb), "0"]
        lines.append(",".join(f'"{c}"' for c in cells))
    path.write_text("\n".join(lines) + "\n")


KERNEL = [
    ("IMAD R1, R2, R3, RZ", 10, 0, 0),
    ("SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [R4+URZ+0x38700], R5", 5, 0, 5),
    ("HGMMA.64x64x16.F32.BF16 R152, gdesc[UR16], RZ, !UPT", 2, 0, 0),
    ("HGMMA.64x64x16.F32.BF16 R152, gdesc[UR16], R152, gsb0", 3, 0, 0),
    ("BAR.SYNC.DEFER_BLOCKING 0x1, 0x100", 0, 0, 0),
    ("FMUL R7, R8, R9", 60, 60, 0),  # sampled after the barrier: waiting at it
    ("BAR.ARV 0x2, 0x100", 20, 0, 0),
]


def test_segments_end_at_synchronization_points(tmp_path):
    path = tmp_path / "src.csv"
    write_csv(path, KERNEL)
    ins = ncu_segments.read_source_csv(str(path))
    assert [i[0] for i in ins] == [16 * k for k in range(len(KERNEL))]
    segs = ncu_segments.segments(ins)
    # Split after the mbarrier wait, the wgmma batch's last HGMMA, BAR.SYNC and BAR.ARV.
    assert [len(s) for s in segs] == [2, 2, 1, 2]
    assert segs[1][0][1].startswith("HGMMA") and "gsb0" in segs[1][-1][1]


def test_shares_and_cycles_per_iteration(tmp_path):
    path = tmp_path / "src.csv"
    write_csv(path, KERNEL)
    ins = ncu_segments.read_source_csv(str(path))
    lines = ncu_segments.summarize(ins, min_share=0.0, cycles_per_iter=1000.0, warps_share=0.5)
    assert lines[0] == "total samples 100"
    # The last segment (the FMUL waiting after BAR.SYNC, and BAR.ARV) holds 80% of
    # the samples: 0.8 / 0.5 of a 1000-cycle iteration for warps that are half the CTA.
    last = lines[-1]
    assert " 80.0%" in last and "~  1600 cyc/iter" in last and "barrier:75%" in last
    assert " 15.0%" in lines[1] and "long_sb:33%" in lines[1]
    # Hidden under the threshold.
    assert len(ncu_segments.summarize(ins, min_share=10.0)) == 3


def test_top_instructions(tmp_path):
    path = tmp_path / "src.csv"
    write_csv(path, KERNEL)
    top = ncu_segments.top_instructions(ncu_segments.read_source_csv(str(path)), 2)
    assert top[0].startswith("60.00%") and "FMUL" in top[0]
    assert "BAR.ARV" in top[1]


def test_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('"Kernel Name","k",\n"Source","x"\n')
    with pytest.raises(ValueError, match="no 'Address' header"):
        ncu_segments.read_source_csv(str(bad))
    run = subprocess.run([sys.executable, SCRIPT, str(bad)], capture_output=True, text=True)
    assert run.returncode == 2 and "ncu_segments:" in run.stderr
    good = tmp_path / "src.csv"
    write_csv(good, KERNEL)
    run = subprocess.run([sys.executable, SCRIPT, str(good), "--cycles-per-iter", "10"], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "go together" in run.stderr
    run = subprocess.run([sys.executable, SCRIPT, str(good), "--cycles-per-iter", "10", "--warps-share", "2"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "fraction" in run.stderr
