"""The last test of the fault-injection suite: what was tried (cases, kills, faults by kind, how
generated inputs ended), printed so the numbers can be read off CI output. It runs in either tier
(`make test` runs the fast instance, `make test-slow` the slow one)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("tier", ["fast", pytest.param("slow", marks=pytest.mark.slow)])
def test_print_what_was_tried(fault_log, capsys, tier):
    tests = [t for t in fault_log.tests if "test_zz_faults_summary" not in t]
    lines = [f"fault-injection suite ({tier} tier): {len(tests)} tests, {fault_log.cases} cases, "
             f"{fault_log.kills} SIGKILLs, {sum(fault_log.faults.values())} faults injected"]
    lines += [f"  fault  {n:5d}  {kind}" for kind, n in sorted(fault_log.faults.items())]
    lines += [f"  input  {n:5d}  {what}" for what, n in sorted(fault_log.outcomes.items())]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert tests, "the summary ran without the suite before it"
