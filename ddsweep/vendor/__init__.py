"""Third-party code shipped with ddsweep, unchanged.

sweeps/ is W&B's open-source sweep engine, version 0.3.0 (https://github.com/wandb/sweeps, MIT
licence, sweeps/LICENSE), the same engine W&B's servers run. Its package on PyPI pins numpy<2 although
it works with numpy 2; vendored, `pip install .` gives a working `ddsweep sweep` without either
pinning numpy below 2 for the whole environment or a separate `pip install --no-deps` step.
"""
