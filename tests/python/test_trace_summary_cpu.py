"""scripts/trace_summary.py turns the phase stamps of a measurement build into
phase times relative to the decode kernel's first entry."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "trace_summary.py")


def run(path):
    return subprocess.run([sys.executable, SCRIPT, str(path)], capture_output=True, text=True)


def test_phases_are_relative_to_the_first_entry(tmp_path):
    # Two decode CTAs (entry at 1000 and 3000 ns), one combine CTA (entry
    # at 26000, past its dependency wait at 27000).
    rows = ["kernel,cta,slot,ns",
            "0,0,0,1000", "0,0,1,2000", "0,0,2,5000", "0,0,9,21000",
            "0,1,0,3000", "0,1,1,4000", "0,1,2,9000", "0,1,9,25000",
            "1,0,0,26000", "1,0,1,27000", "1,0,2,30000"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    done = run(path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # exit: first 20.00 us, last 24.00 us after the first entry.
    assert any("exit" in line and "20.00" in line and "24.00" in line for line in out.splitlines()), out
    assert "barriers ready, previous grid done -> first q landed: 4.00" in out  # median of 3 and 5 us
    assert "combine's first ready (past its wait) - decode's last exit: 2.00 us" in out


def test_no_decode_stamps_says_so(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("kernel,cta,slot,ns\n")
    done = run(path)
    assert done.returncode == 0
    assert "no dense decode stamps" in done.stdout


def test_trace_cases_refuses_bad_arguments_before_building(tmp_path):
    script = os.path.join(ROOT, "scripts", "trace_cases.sh")
    for args, message in [((), "name at least one dense decode case"),
                          (("S01",), "S01 is not a dense decode case"),
                          (("D16",), "D16 is not a dense decode case")]:
        done = subprocess.run(["bash", script, "--out", str(tmp_path / "t"), *args], capture_output=True, text=True)
        assert done.returncode == 2
        assert message in done.stderr
        assert not (tmp_path / "t").exists()  # refused before anything was made
