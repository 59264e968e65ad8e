"""ddsweep/__init__.py: importing ddsweep makes MKL's matmuls independent of memory alignment."""
import os
import subprocess
import sys


def mkl_cbwr_after_import(env: dict) -> str:
    code = "import ddsweep, os; print(os.environ['MKL_CBWR'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_import_sets_mkl_strict_reproducibility_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    assert mkl_cbwr_after_import(env) == "AUTO,STRICT"
    assert mkl_cbwr_after_import({**env, "MKL_CBWR": "COMPATIBLE"}) == "COMPATIBLE"
