"""ddsweep: double-descent width sweeps with decision-region and reproducibility measurements.

Installed, the distribution is this one package: `ddsweep.models` (networks), `ddsweep.data`
(datasets, label noise), `ddsweep.pipeline` (config, training, measurement, sweeps, report, CLI),
`ddsweep.errors` (the errors every layer raises) and `ddsweep.vendor` (third-party code shipped
with it). In the source tree models/, data/ and pipeline/ stay top-level folders; pyproject.toml
maps them into this package, so an installed ddsweep never takes the names `models`, `data` or
`pipeline` from a user's own code.
"""

import os as _os

# Intel MKL (torch's CPU BLAS) may round a matmul differently depending on where its operands lie
# in memory. A fused network's copy s sits at an offset in every weight, a separate run's copy at
# none, so without this a fused copy could differ from the same run trained apart in the last bit
# (or two seeds trained identically could differ). STRICT makes the results independent of the
# operands' alignment; measured here it costs no speed. MKL reads this at its first call, so it is
# set when ddsweep is imported, before any matmul; a user's own MKL_CBWR is kept.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
