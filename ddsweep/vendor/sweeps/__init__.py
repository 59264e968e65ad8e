from .config import SweepConfig, schema_violations_from_proposed_config  # noqa
from .run import RunState, SweepRun, next_run, next_runs, stop_runs  # noqa

__version__ = "0.3.0"
