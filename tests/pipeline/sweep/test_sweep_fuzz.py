"""Malformed sweep files, generated: each is accepted (and expands to valid points) or rejected with
a one-line UserError, never another exception."""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from ddsweep.errors import UserError
from ddsweep.pipeline.sweep.spec import build_command, expand, load_spec, validate_points

KEYS = ["model.width", "data.noise.rate", "train.lr", "seeds", "model.name", "train.epochs", "bogus", "model",
        "output_dir", "", "train.optimizer"]
scalars = hs.one_of(hs.none(), hs.booleans(), hs.integers(-3, 600), hs.floats(allow_nan=True, allow_infinity=True),
                    hs.text(max_size=6), hs.sampled_from(["mlpk", "adam", "sgd", "${args}", "uniform"]))
values = hs.one_of(scalars, hs.lists(scalars, max_size=4))
parameter = hs.one_of(
    values,
    hs.fixed_dictionaries({"values": values}),
    hs.fixed_dictionaries({"value": values}),
    hs.fixed_dictionaries({"min": scalars, "max": scalars}),
    hs.fixed_dictionaries({"distribution": hs.sampled_from(["uniform", "int_uniform", "categorical", "foo",
                                                            "log_uniform_values", "q_uniform"]),
                           "min": scalars, "max": scalars}),
    hs.dictionaries(hs.sampled_from(["values", "value", "min", "max", "q", "distribution", "parameters", "x"]),
                    values, max_size=3),
)
plausible = hs.fixed_dictionaries({}, optional={
    "model.width": hs.one_of(hs.fixed_dictionaries({"values": hs.lists(hs.integers(-1, 20), min_size=1, max_size=3)}),
                             hs.fixed_dictionaries({"distribution": hs.just("int_uniform"), "min": hs.integers(-2, 9),
                                                    "max": hs.integers(-2, 9)})),
    "data.noise.rate": hs.one_of(hs.fixed_dictionaries({"values": hs.lists(hs.floats(-0.5, 1.5), min_size=1,
                                                                             max_size=3)}),
                                 hs.fixed_dictionaries({"distribution": hs.just("uniform"), "min": hs.floats(0, 1),
                                                        "max": hs.floats(0, 1)})),
    "train.lr": hs.fixed_dictionaries({"distribution": hs.sampled_from(["log_uniform_values", "uniform"]),
                                       "min": hs.floats(1e-5, 1), "max": hs.floats(1e-5, 1)}),
    "train.optimizer": hs.fixed_dictionaries({"values": hs.lists(hs.sampled_from(["adam", "sgd", "lbfgs"]),
                                                                 min_size=1, max_size=2)}),
    "seeds": hs.fixed_dictionaries({"value": hs.lists(hs.integers(-1, 3), max_size=3)}),
})
commands = hs.lists(hs.sampled_from(["${env}", "${interpreter}", "${program}", "${args}", "ddsweep", "train",
                                      "${args_json}", "${args_json_file}", "${foo}", "--train.epochs=1",
                                      "--output_dir=x", "x${args}"]), max_size=5)
config = hs.fixed_dictionaries(
    {
        "method": hs.one_of(hs.sampled_from(["grid", "random", "bayes"]), hs.sampled_from(["custom", "foo", 3, None])),
        "parameters": hs.one_of(plausible, plausible,
                                hs.dictionaries(hs.sampled_from(KEYS), parameter, min_size=1, max_size=3),
                                hs.dictionaries(hs.sampled_from(KEYS[:6]), hs.fixed_dictionaries({"values": values}),
                                                min_size=1, max_size=3),
                                values),
        "command": hs.one_of(hs.just(["ddsweep", "train", "${args}"]), commands, values),
    },
    optional={
        "program": values,
        "run_cap": scalars,
        "metric": hs.one_of(values, hs.fixed_dictionaries({"name": scalars, "goal": scalars}),
                            hs.just({"name": "test/error", "goal": "minimize"})),
        "name": scalars,
    })


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=config, text=hs.one_of(hs.none(), hs.text(max_size=40)))
def test_any_sweep_file_is_accepted_or_rejected_in_one_line(tmp_path, config, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(config))
    try:
        spec = load_spec(path)
        points = expand(spec, max_points=4) if spec.method != "bayes" else []
        validate_points(spec, points)
        for point in points:
            assert build_command(spec, point)
    except UserError as err:
        assert "\n" not in str(err) and str(err)
