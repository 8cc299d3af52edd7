"""scripts/compare_rounds.py: the summary of repeated same-run comparisons
(pure Python, no GPU): medians per case, ratio ranges, geometric means, and
the refusal to run without a built benchmark."""

import importlib.util
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "compare_rounds.py")

_spec = importlib.util.spec_from_file_location("compare_rounds", SCRIPT)
compare_rounds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_rounds)


def results(times):
    """A results file as flashmla-bench writes it: {case: (ours, flashmla)}."""
    cases = []
    for name, (ours, peer) in times.items():
        cases.append({"case": name + "/FlashMLA", "status": "ok", "time_us": peer})
        cases.append({"case": name, "status": "ok", "time_us": ours})
    return {"meta": {"gpu": "test"}, "cases": cases}


def test_medians_ranges_and_geomeans():
    rounds = [
        results({"D01": (100.0, 90.0), "D02": (200.0, 220.0), "S01": (50.0, 50.0)}),
        results({"D01": (120.0, 96.0), "D02": (210.0, 210.0), "S01": (40.0, 50.0)}),
        results({"D01": (110.0, 99.0), "D02": (190.0, 209.0), "S01": (45.0, 45.0)}),
    ]
    summary = compare_rounds.aggregate(rounds)
    by_case = {c["case"]: c for c in summary["cases"]}
    assert sorted(by_case) == ["D01", "D02", "S01"]
    d01 = by_case["D01"]
    assert d01["rounds"] == 3
    assert d01["ours_us"] == 110.0 and d01["flashmla_us"] == 96.0
    # Per-round ratios 0.9, 0.8, 0.9: the median of the ratios, not the ratio of the medians.
    assert d01["ratio"] == pytest.approx(0.9)
    assert d01["ratio_min"] == pytest.approx(0.8) and d01["ratio_max"] == pytest.approx(0.9)
    assert by_case["S01"]["ratio"] == pytest.approx(1.0)
    assert by_case["D02"]["ratio"] == pytest.approx(1.1)
    assert summary["geomean"]["D"] == pytest.approx(math.sqrt(0.9 * 1.1))
    assert summary["geomean"]["S"] == pytest.approx(1.0)
    assert summary["geomean"]["all"] == pytest.approx((0.9 * 1.1 * 1.0) ** (1 / 3))


def test_even_round_count_takes_the_mean_of_the_middle_pair():
    rounds = [results({"D01": (100.0, t)}) for t in (80.0, 90.0, 100.0, 130.0)]
    c = compare_rounds.aggregate(rounds)["cases"][0]
    assert c["flashmla_us"] == pytest.approx(95.0)
    assert c["ratio"] == pytest.approx(0.95)


def test_a_case_missing_from_a_round_or_failed_is_left_out():
    first = results({"D01": (100.0, 90.0), "D02": (100.0, 90.0)})
    second = results({"D01": (100.0, 90.0), "D02": (100.0, 90.0)})
    second["cases"][-1]["status"] = "error"  # ours of D02 failed in round 2
    third = results({"D01": (100.0, 90.0)})
    summary = compare_rounds.aggregate([first, second, third])
    assert [c["case"] for c in summary["cases"]] == ["D01"]


def test_no_rounds_is_an_error():
    with pytest.raises(ValueError):
        compare_rounds.aggregate([])


def test_refuses_without_a_benchmark_binary(tmp_path):
    missing = str(tmp_path / "no-such-bench")
    done = subprocess.run([sys.executable, SCRIPT, "--bench", missing, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "no flashmla-bench at " + missing in done.stderr


def test_rounds_alternate_the_order_and_only_time(tmp_path):
    # A stand-in benchmark: records its arguments, writes a results file.
    log = tmp_path / "calls.txt"
    fake = tmp_path / "fake-bench"
    fake.write_text(
        "#!" + sys.executable + "\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "open(%r, 'a').write(' '.join(args) + '\\n')\n"
        "path = args[args.index('--results') + 1]\n"
        "rows = [{'case': 'D01/FlashMLA', 'status': 'ok', 'time_us': 90.0},\n"
        "        {'case': 'D01', 'status': 'ok', 'time_us': 100.0}]\n"
        "json.dump({'meta': {}, 'cases': rows}, open(path, 'w'))\n" % str(log))
    fake.chmod(0o755)
    out = tmp_path / "o"
    done = subprocess.run([sys.executable, SCRIPT, "--bench", str(fake), "--rounds", "3", "--out", str(out),
                           "--case", "D01"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    assert ["--flashmla-second" in c for c in calls] == [False, True, False]
    assert all("--against-flashmla" in c and "--no-verify" in c and c.endswith("--case D01") for c in calls)
    assert "D01" in done.stdout and "0.900x" in done.stdout
    assert (out / "rounds.json").exists() and (out / "round-3.json").exists()
