"""scripts/cycles_variants.sh refuses bad arguments before it builds anything,
each with a message that names what is wrong."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cycles_variants.sh")


def run(*args, out):
    return subprocess.run(["bash", SCRIPT, "--out", str(out), *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    ((), "name at least one case after --"),
    (("--",), "name at least one case after --"),
    (("/no/such.patch", "--", "D01"), "no patch file /no/such.patch"),
    (("--rounds", "0", "--", "D01"), "--rounds needs a positive count, got '0'"),
    (("--", "D01", "Q07"), "unknown case Q07"),
])
def test_bad_arguments_are_refused(args, message, tmp_path):
    done = run(*args, out=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "bin").exists()  # refused before any build
