"""Bad input, generated (hypothesis): `ddsweep train` given malformed overrides (random keys at random
dotted paths, values of every type, YAML-ish text) and malformed --config files (random mappings,
YAML-ish text, bytes) either accepts the config or rejects it with exit code 2 and ONE line on stderr
naming the key, file or argument at fault: never a traceback, never a hang. Accepted configs go as
far as training would before its first step (data, label noise, the network) through a stub of
`ddsweep.pipeline.train.run.train_run`, so nothing trains.

Sweep files are fuzzed in tests/pipeline/sweep/test_sweep_fuzz.py; a test here adds what that one
does not generate: YAML-structured junk (tags, anchors, nesting, flow mixes), non-mapping documents
and undecodable bytes. The last one gives `ddsweep sweep`, `report` and `plane` generated bad
command lines (paths that are files, under files, missing or clashing; bad options; junk sweep
files and state files) and asks the same of each: exit code 2, one line, no traceback, nothing
run."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from faults_helpers import cli_in_process
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from ddsweep.pipeline import cli
from ddsweep.pipeline.config import Config, known_keys, set_dotted

KNOWN = sorted(known_keys(Config()))
OPTIONS = ["model.depth", "model.patch_size", "model.head_dim", "model.mlp_ratio", "data.test_fraction",
           "data.split_seed", "data.dim", "data.classes", "data.train_size", "data.test_size", "data.separation",
           "data.noise.x", "data.num_samples", "data.train_split", "data.turns", "model.options", "data.options"]
ODD_KEYS = [".", "model.", ".model", "model..width", "model.width.x", "nope", "train.epochs.x", "provenance",
            "wandb.mode.x", "seeds.0", "ü.ß", "1", "model.name.name", "data.noise.rate.0", "planes.families.x",
            "-", "model.width=", "config", "quiet", "q", "c", "h"]
NAMES = ["mlpk", "cnn5k", "vitk", "cnn1dk", "resnet18k", "vggk", "digits", "gaussians", "moons", "spirals",
         "cifar10", "mnist", "adam", "sgd", "symmetric", "asymmetric", "uniform", "test_distinct", "train", "test",
         "mislabeled", "auto", "cpu", "gpu", "online", "offline", "disabled", "cosine", "inv_sqrt", "both"]
ODD_TEXT = ["1e30", "1e-3", "1e400", "nan", ".nan", ".inf", "-.inf", "[", "{", "]", "}", "~", "null", "yes", "0x10",
            "1_000", "0o17", "2020-01-01", "!!python/object/apply:os.getcwd []", "!!binary aGk=", "&a x", "*a", "'",
            '"', "%", " ", "", "[1, [2, [3]]]", "{a: 1}", "- a", ": :", "\t", "a: b: c", "!!int x", "!!float x",
            "--model.width=4", "\x00", "\\", "${args}", "$(echo x)"]

keys = hs.one_of(hs.sampled_from(KNOWN), hs.sampled_from(OPTIONS), hs.sampled_from(ODD_KEYS),
                 hs.text(alphabet="abcdemnoprstwy._-0", min_size=1, max_size=14))
scalars = hs.one_of(hs.none(), hs.booleans(), hs.integers(-3, 40),
                    hs.floats(allow_nan=True, allow_infinity=True), hs.floats(-2, 2),
                    hs.text(max_size=8), hs.sampled_from(NAMES), hs.sampled_from(ODD_TEXT))
values = hs.recursive(scalars, lambda inner: hs.one_of(
    hs.lists(inner, max_size=3),
    hs.dictionaries(hs.one_of(hs.sampled_from(["width", "name", "rate", "mode", "x"]), hs.text(max_size=4)),
                    inner, max_size=3)), max_leaves=6)


def as_text(value) -> str:
    """A value as it would be typed after `--key=`."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").removesuffix("...").strip()




def defaults(node, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(defaults(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def family_defaults() -> dict:
    """model.<option> and data.<option> of every registered family and source, with their defaults."""
    from ddsweep.data import list_sources, source_options
    from ddsweep.models import list_models, model_options

    out = {}
    for name in list_models():
        out.update({f"model.{k}": v for k, v in model_options(name).items()})
    for name in list_sources():
        out.update({f"data.{k}": v for k, v in source_options(name).items()})
    return out


DEFAULTS = {k: v for k, v in {**defaults(Config().to_dict()), **family_defaults()}.items()
            if k not in ("output_dir", "data.root", "data.download")}


def typed_like(default):
    """Values of the default's kind, near it: many are valid, some just out of range."""
    if isinstance(default, bool):
        return hs.booleans()
    if isinstance(default, int):
        return hs.integers(0, 12)
    if isinstance(default, float):
        return hs.floats(0, 0.95)
    if isinstance(default, list):
        return hs.lists(hs.one_of(hs.sampled_from(["train", "test", "clean_class"]), hs.integers(0, 3)),
                        max_size=3, unique=True)
    return hs.sampled_from(NAMES)


# near misses: real keys with values of the right kind, so that many examples are accepted and go on
near_miss = hs.sampled_from(sorted(DEFAULTS)).flatmap(
    lambda key: typed_like(DEFAULTS[key]).map(lambda value: (key, f"--{key}={as_text(value)}")))
override = hs.one_of(
    near_miss, near_miss, near_miss,
    hs.tuples(keys, values).map(lambda kv: (kv[0], f"--{kv[0]}={as_text(kv[1])}")),
    hs.tuples(keys, hs.sampled_from(ODD_TEXT)).map(lambda kv: (kv[0], f"--{kv[0]}={kv[1]}")),
    hs.sampled_from(["--", "-", "--=", "--=x", "word", "--model.width", "-x=1", "--quiet", "---a=1"]).map(
        lambda token: (None, token)),
)
YAML_LINES = ["model:", "  width: 4", "  name: mlpk", "data:", "  noise:", "    rate: 0.2", "train: {epochs: 2}",
              "seeds: [0, 1]", "- a", "[", "{", "}", "key: value", ": :", "%YAML 1.2", "---", "...", "\tx: 1",
              "a: &anchor {b: 1}", "c: *anchor", "d: *missing", "? [a, b]", ": 1", "model: [1, 2]", "model: null",
              "!!python/object/apply:os.getcwd []", "wandb: disabled", "planes: {families: mislabeled}",
              "x: 'unterminated", "model: {width: !!float nan}", "train:", "  lr: 1e30", "ü: ß", "# comment",
              "data: {name: gaussians, dim: 0}", "data: {name: moons, noise: -1}", "model: {name: vitk, patch_size: 5}"]
config_file = hs.one_of(
    hs.none(), hs.none(), hs.none(),
    hs.lists(hs.tuples(keys, values), max_size=4).map(lambda pairs: ("mapping", pairs)),
    hs.lists(hs.sampled_from(YAML_LINES), min_size=1, max_size=6).map(lambda lines: ("text", "\n".join(lines))),
    hs.binary(max_size=24).map(lambda data: ("bytes", data)),
    hs.sampled_from(["[1, 2]", "42", "just a string", "null", "", "---\n---\n", "a: 1\n---\nb: 2\n"]).map(
        lambda text: ("text", text)),
)


@pytest.fixture(scope="module")
def stub_train(tmp_path_factory):
    """Everything `train_run` checks before its first step, without training or writing."""
    import ddsweep.pipeline.train.run
    from ddsweep.pipeline.train.network import build_network, seed_streams
    from ddsweep.pipeline.train.device import resolve_accelerator
    from ddsweep.pipeline.train.run import prepare_data

    accepted = []

    def stub(cfg, argv=None, verbose=True):
        if not cfg.data.download:  # the network is out of bounds here
            dataset, _, _ = prepare_data(cfg)
            init_seeds, _ = seed_streams(cfg.seeds, cfg.repro.vary)
            build_network(cfg.model, in_shape=dataset.in_shape, num_classes=dataset.num_classes,
                          init_seeds=init_seeds[:1], fuse=True)
        resolve_accelerator(cfg.train.accelerator)
        accepted.append(cfg)
        return 0

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ddsweep.pipeline.train.run, "train_run", stub)
        stub(Config())  # imports and the first dataset load happen here, not inside a timed example
        accepted.clear()
        yield accepted


def dotted(key: str) -> set[str]:
    parts = str(key).split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def file_keys(raw, prefix: str = "") -> set[str]:
    """Every dotted key path in a loaded config file."""
    out = set()
    if isinstance(raw, dict):
        for key, value in raw.items():
            key = key if isinstance(key, str) and key.strip() else repr(key)  # as the error quotes it
            out |= dotted(f"{prefix}{key}") | file_keys(value, f"{prefix}{key}.")
    return out


def names_in(overrides, path) -> set[str]:
    """What an error may name: every key given (and each dotted prefix), the file, the raw tokens."""
    out = set()
    for key, token in overrides:
        if key is None:
            out.add(repr(token))  # a malformed argument is quoted as given...
            if token.startswith("--") and "=" in token:  # ...or, if it has the form, its key named
                out |= dotted(token[2:].split("=", 1)[0])
        else:
            out |= dotted(key) | {token.split("=", 1)[0]}
    if path is not None:
        out.add(str(path))
        try:
            out |= file_keys(yaml.safe_load(path.read_bytes()))
        except (yaml.YAMLError, ValueError):
            pass
    return {n for n in out if n}


counter = itertools.count()


@settings(max_examples=200, deadline=timedelta(seconds=15), database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(overrides=hs.lists(override, max_size=4), config=config_file)
def test_train_accepts_or_rejects_in_one_line(stub_train, tmp_path, fault_log, overrides, config):
    argv, path = ["train"], None
    if config is not None:
        path = tmp_path / f"config{next(counter)}.yaml"
        kind, content = config
        if kind == "mapping":
            raw: dict = {}
            for key, value in content:
                set_dotted(raw, str(key), value)
            content = yaml.safe_dump(raw, allow_unicode=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        argv += ["--config", str(path)]
    argv += [token for _, token in overrides]
    argv += [f"--output_dir={tmp_path / 'runs'}"]
    code, stderr = cli_in_process(argv)
    fault_log.case()
    text = stderr
    assert "Traceback" not in text, text
    assert code in (0, 2), (argv, code, text)
    fault_log.outcome(f"train config {'accepted' if code == 0 else 'rejected'}")
    if code == 0:
        assert not text.strip(), text
        return
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddsweep: error: "), (argv, text)
    names = names_in(overrides, path)
    assert any(name in lines[0] for name in names), (argv, lines[0])
    assert not (tmp_path / "runs").exists()


SWEEP_LINES = ["method: grid", "method: [grid]", "parameters:", "  model.width:", "    values: [1, 2]",
               "    values: !!python/object/apply:os.getcwd []", "  x: &a {values: [1]}", "  y: *a", "  z: *nope",
               "command: [${env}, ddsweep, train, ${args}]", "command: ['${env}', ddsweep, train, '${args}']",
               "program: ddsweep", "- grid", "[", "{", "\tmethod: grid", "---", "...", "? [a]", ": b",
               "parameters: [model.width]", "metric: {name: test/error, goal: minimize}", "run_cap: -1",
               "method: bayes", "parameters: {seeds: {value: [0, 1]}}", "%TAG ! tag:x,2000:", "!x 1"]


@settings(max_examples=100, deadline=timedelta(seconds=10), database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=hs.one_of(
    hs.lists(hs.sampled_from(SWEEP_LINES), min_size=1, max_size=7).map(lambda lines: "\n".join(lines).encode()),
    hs.binary(max_size=32),
    hs.sampled_from([b"[1, 2]", b"42", b"null", b"", b"\xff\xfe\x00m", b"---\n---\n", b"- method: grid\n"])))
def test_sweep_file_junk_is_rejected_in_one_line(tmp_path, fault_log, content):
    from ddsweep.errors import UserError
    from ddsweep.pipeline.sweep.spec import expand, load_spec, validate_points

    path = tmp_path / "junk.yaml"
    path.write_bytes(content)
    fault_log.case()
    try:
        spec = load_spec(path)
        if spec.method != "bayes":
            validate_points(spec, expand(spec, max_points=2))
    except UserError as err:
        message = str(err)
        assert message and "\n" not in message and str(path) in message
        fault_log.outcome("sweep file rejected")
    else:
        fault_log.outcome("sweep file accepted")


# ----------------------------------------------------------------------------- sweep, report, plane

# A sweep file that is valid but would train nothing if a case ever slipped through (it must not)
SAFE_SWEEP = {"method": "grid", "parameters": {"model.width": {"values": [1, 2]}},
              "command": ["${env}", "${interpreter}", "-c", "pass", "${args}"]}
STATE_JUNK = ["{", "[1, 2]", "null", '{"points": 5}', '{"points": [5, "x", null]}', '{"points": {"a": 1}}',
              '{"points": [{"id": 3, "run_dir": 5}]}', '{"points": [{"id": "p", "params": 7}]}', "\udcff"]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """Fixed things the generated command lines point at ("<NAME>" in a token)."""
    root = tmp_path_factory.mktemp("bad_commands")
    a_file = root / "a_file"
    a_file.write_text("not a directory")
    (root / "empty").mkdir()
    (root / "valid.yaml").write_text(yaml.safe_dump(SAFE_SWEEP))
    for i, text in enumerate(STATE_JUNK):  # sweep directories whose state.json is damaged
        (root / f"state{i}").mkdir()
        (root / f"state{i}" / "state.json").write_text(text, errors="surrogateescape")
    saved = root / "runs" / "r1"  # a run directory whose checkpoint is not one
    (saved / "checkpoints").mkdir(parents=True)
    (saved / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    (saved / "config.yaml").write_text(yaml.safe_dump({"seeds": [0, 1], "planes": {"families": ["train"]}}))
    (root / "runs" / "r2").mkdir()
    (root / "runs" / "r2" / "config.yaml").write_text("seeds: [0]\n")  # and one with no checkpoint
    clash = root / "clash"  # outputs that are directories where a report or a plane writes files
    for name in ("index.html", "runs.csv", "errors.png", "r1_train_0_final.npz", "r1_train_0_final.png"):
        (clash / name).mkdir(parents=True)
    names = {"FILE": a_file, "EMPTY": root / "empty", "NOWHERE": root / "nowhere", "VALID": root / "valid.yaml",
             "SAVED": saved, "NOCKPT": root / "runs" / "r2", "CLASH": clash, "ROOT": root}
    names.update({f"STATE{i}": root / f"state{i}" for i in range(len(STATE_JUNK))})
    return names


def expand_tokens(tokens: list[str], names: dict) -> list[str]:
    out = []
    for token in tokens:
        for name, path in sorted(names.items(), key=lambda kv: -len(kv[0])):
            token = token.replace(f"<{name}>", str(path))
        out.append(token)
    return out


def choice(*groups):
    return hs.sampled_from([list(g) for g in groups])


# each fault alone makes the command line wrong; noise is anything else, right or wrong
sweep_fault = choice(
    ["--output", "<FILE>"], ["--output", "<FILE>/sub/dir"], ["--output", "<VALID>/x"],
    ["--resume", "<NOWHERE>"], ["--resume", "<FILE>"], ["--resume", "<EMPTY>"], ["--resume", "<STATE0>"],
    ["--resume", "<FILE>", "--output", "<EMPTY>"], ["--workers", "0"], ["--workers", "x"], ["--max-points", "-1"],
    ["--seed", "x"], ["--seed", "-2"], ["--agents", "0"], ["--shard", "0/2"], ["--shard", "3/2"], ["--shard", "a"],
    ["--shard", "1/0"], ["--shard", "1/2/3"], ["--shard", ""], ["--shard", "-1/2"], ["--slurm", "--shard", "1/2"],
    ["--slurm", "--slurm-param", "account"], ["--slurm", "--slurm-param", "=x"], ["--bogus"], ["--train.epochs", "1"],
    ["-x"], ["--gpus-per-job", "-1"], ["--timeout-min", "0"], ["--mem-gb", "x"], ["--output"])
sweep_file = hs.one_of(
    choice(["<VALID>"], ["<VALID>"], ["<NOWHERE>"], ["<EMPTY>"], ["<FILE>"], ["<SAVED>"], []),
    hs.lists(hs.sampled_from(SWEEP_LINES), min_size=1, max_size=6).map(lambda lines: ["JUNK:" + "\n".join(lines)]))
sweep_noise = choice(["--local"], ["--workers", "1"], ["--max-points", "2"], ["--dry-run"], ["--retry-failed"],
                     ["--train.epochs=1"], ["--seed", "3"], ["--agents", "2"], ["--model.width=4"], ["--wait"])
report_runs = choice(["<NOWHERE>"], ["<FILE>"], ["<EMPTY>"], *[[f"<STATE{i}>"] for i in range(len(STATE_JUNK))])
report_opts = choice(["--out", "<FILE>"], ["--out", "<FILE>/x"], ["--out", "<CLASH>"], ["--format", "bmp"],
                     ["--format", ""], ["--format", ",,"], ["--format", "png"], ["--wandb"], ["--bogus"], ["--out"],
                     ["--out", "<ROOT>/report_out"], ["--format=svg,pdf"], ["-h=1"])
plane_runs = choice(["<NOWHERE>"], ["<FILE>"], ["<EMPTY>"], ["<SAVED>"], ["<NOCKPT>"], ["<SAVED>/checkpoints/last.ckpt"],
                    ["<SAVED>", "<NOCKPT>"], ["<SAVED>", "<SAVED>"], ["<VALID>"])
plane_opts = choice(["--out", "<FILE>"], ["--out", "<FILE>/x"], ["--out", "<CLASH>"], ["--resolution", "1"],
                    ["--resolution", "0"], ["--resolution", "-3"], ["--resolution", "x"], ["--resolution", "100000"],
                    ["--resolution", "40"], ["--margin", "-1"], ["--margin", "x"], ["--margin", "nan"],
                    ["--index", "x"], ["--index", "-1"], ["--index", "0", "999"], ["--family", "nope"],
                    ["--family", "train"], ["--bogus"], ["--index"])


def command_line(kind: str, draw) -> list[str]:
    if kind == "sweep":
        groups = [draw(sweep_file), draw(sweep_fault)] + draw(hs.lists(sweep_noise, max_size=3))
    elif kind == "report":
        groups = [draw(report_runs)] + draw(hs.lists(report_opts, max_size=3))
    else:
        groups = [draw(plane_runs)] + draw(hs.lists(plane_opts, max_size=3))
    argv = [kind] + [token for group in draw(hs.permutations(groups)) for token in group]
    if kind != "sweep" and "--out" not in argv:
        argv += ["--out", "<ROOT>/out"]  # never the default, relative to the working directory
    return argv


@settings(max_examples=240, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=hs.sampled_from(["sweep", "report", "plane"]), data=hs.data())
def test_bad_sweep_report_plane_command_lines_end_in_one_line(places, tmp_path, monkeypatch, fault_log, kind, data):
    monkeypatch.chdir(places["ROOT"])  # any default output path stays in the scratch directory
    argv = command_line(kind, data.draw)
    junk = [t for t in argv if t.startswith("JUNK:")]
    if junk:  # a generated sweep file
        path = tmp_path / f"junk{next(counter)}.yaml"
        path.write_text(junk[0][5:])
        argv = [str(path) if t == junk[0] else t for t in argv]
    argv = expand_tokens(argv, places)
    code, stderr = cli_in_process(argv)
    fault_log.case()
    text = stderr
    assert "Traceback" not in text, (argv, text)
    assert code == 2, (argv, code, text)
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddsweep"), (argv, text)
    assert not (places["ROOT"] / "out").exists() or not any((places["ROOT"] / "out").iterdir()), argv
    fault_log.outcome(f"{kind} command line rejected")
