"""Where a sweep lives on W&B: whether W&B is online, the sweep's project and entity, and the
file in the sweep directory that records its W&B sweep (shared by the online engine and the
dashboard)."""
from __future__ import annotations

from ddsweep.pipeline.sweep.spec import SweepSpec

SWEEP_ID_FILE = "wandb_sweep.json"


def is_online() -> bool:
    from ddsweep.pipeline.store.tracking import has_api_key, wandb_mode

    return wandb_mode() == "online" and has_api_key()


def project_entity(spec: SweepSpec) -> tuple[str, str | None]:
    """The file's project/entity, else the command's --wandb.project/--wandb.entity, else the
    training config's default project."""
    from ddsweep.pipeline.config import WandbConfig, parse_override

    given = dict(parse_override(a) for a in spec.command if a.startswith("--wandb.") and "=" in a)
    project = spec.config.get("project") or given.get("wandb.project") or WandbConfig().project
    entity = spec.config.get("entity") or given.get("wandb.entity")
    return str(project), (str(entity) if entity else None)
