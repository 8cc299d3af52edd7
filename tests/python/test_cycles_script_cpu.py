"""scripts/cycles.sh refuses bad arguments before it needs a GPU or ncu, each
with a message that names what is wrong."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cycles.sh")


def run(*args):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    ((), "name at least one flashmla-bench build"),
    (("/bin/true",), "name at least one case after --"),
    (("/bin/true", "--"), "name at least one case after --"),
    (("/no/such/bench", "--", "D01"), "no flashmla-bench at /no/such/bench"),
    (("--rounds", "0", "/bin/true", "--", "D01"), "--rounds needs a positive count, got '0'"),
    (("--rounds", "x", "/bin/true", "--", "D01"), "--rounds needs a positive count, got 'x'"),
    (("/bin/true=main", "--", "D01", "Q07"), "unknown case Q07"),
])
def test_bad_arguments_are_refused(args, message):
    done = run(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
