"""ddsweep: double-descent width sweeps with decision-region and reproducibility measurements.

Installed, the distribution is this one package: `ddsweep.models` (networks), `ddsweep.data`
(datasets, label noise), `ddsweep.pipeline` (config, training, measurement, sweeps, report, CLI),
`ddsweep.errors` (the errors every layer raises) and `ddsweep.vendor` (third-party code shipped
with it). In the source tree models/, data/ and pipeline/ stay top-level folders; pyproject.toml
maps them into this package, so an installed ddsweep never takes the names `models`, `data` or
`pipeline` from a user's own code.
"""
