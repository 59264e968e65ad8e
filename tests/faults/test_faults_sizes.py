"""Bad sizes, generated (hypothesis): `ddsweep train` given sizes no machine holds (widths,
plane resolutions and counts, 1-D segment points and pairs, agreement triplets, synthetic data
dimensions and sizes), alone or together, refuses each with exit code 2 and ONE line on stderr
naming one of the keys given, before it writes anything: never a traceback, never an allocation.
The real `train_run` runs (nothing is stubbed), so an example that got past the checks would train."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from faults_helpers import cli_in_process

# Each range starts where even the smallest part it sizes needs terabytes (defaults elsewhere).
HUGE = {
    "model.width": (10**8, 10**12),
    "planes.resolution": (10**6, 10**9),
    "planes.n_planes": (10**11, 10**15),
    "planes.agreement_triplets": (10**11, 10**15),
    "regions1d.points": (10**11, 10**15),
    "regions1d.pairs": (10**11, 10**15),
    "data.dim": (10**11, 10**15),
    "data.train_size": (10**13, 10**16),
    "data.test_size": (10**13, 10**16),
}
GAUSSIAN_ONLY = {"data.dim", "data.train_size", "data.test_size"}

bad_sizes = hs.dictionaries(hs.sampled_from(sorted(HUGE)), hs.just(None), min_size=1, max_size=3).flatmap(
    lambda keys: hs.fixed_dictionaries({k: hs.integers(*HUGE[k]) for k in keys}))


@settings(max_examples=40, deadline=timedelta(seconds=60), database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sizes=bad_sizes, model=hs.sampled_from(["mlpk", "cnn1dk"]))
def test_sizes_that_cannot_fit_are_refused_in_one_line(tmp_path, fault_log, sizes, model):
    gaussian = bool(GAUSSIAN_ONLY & set(sizes)) or model == "cnn1dk"
    argv = ["train", f"--model.name={model}", f"--output_dir={tmp_path / 'runs'}", "--wandb=disabled"]
    argv += ["--data.name=gaussians"] if gaussian else []
    argv += [f"--{key}={value}" for key, value in sizes.items()]
    code, stderr = cli_in_process(argv)
    fault_log.case()
    fault_log.outcome("bad size rejected" if code == 2 else "bad size NOT rejected")
    text = stderr
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ddsweep: error: "), (argv, code, text)
    assert any(lines[0].startswith(f"ddsweep: error: {key}: ") for key in sizes), (argv, lines[0])
    assert not (tmp_path / "runs").exists()
