"""The GPU catalog: GPU types → machine types with hourly prices. A file the operator can replace."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from app.core.errors import ValidationError
from app.core.settings import get_settings

DEFAULT_PATH = Path(__file__).with_name("gpu_catalog.yaml")


@dataclass(frozen=True)
class MachineType:
    machine_type: str
    vcpu: int
    memory_gib: int
    gpu_count: int
    on_demand_cents: int
    spot_cents: int

    def hourly_cents(self, spot: bool) -> int:
        return self.spot_cents if spot else self.on_demand_cents


@dataclass(frozen=True)
class GpuType:
    gpu_type: str
    display_name: str
    machine_types: tuple[MachineType, ...]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, str], ...] = ()


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[GpuType, ...]:
    raw = yaml.safe_load(Path(path).read_text())
    return tuple(
        GpuType(
            gpu_type=g["gpu_type"],
            display_name=g["display_name"],
            node_selector=dict(g.get("node_selector") or {}),
            tolerations=tuple(g.get("tolerations") or ()),
            machine_types=tuple(
                sorted((MachineType(**m) for m in g["machine_types"]), key=lambda m: (m.gpu_count, m.on_demand_cents))
            ),
        )
        for g in raw["gpu_types"]
    )


def gpu_catalog() -> tuple[GpuType, ...]:
    return _load(get_settings().gpu_catalog_path or str(DEFAULT_PATH))


def resolve_machine(gpu_type: str, gpu_count: int, machine_type: str | None) -> tuple[GpuType, MachineType]:
    """gpu_type → gpu_count → machine_type (default: the smallest that has that many GPUs)."""
    gpu = next((g for g in gpu_catalog() if g.gpu_type == gpu_type), None)
    if gpu is None:
        known = ", ".join(g.gpu_type for g in gpu_catalog())
        raise ValidationError({"resources.gpuType": f"unknown GPU type {gpu_type!r} (known: {known})"})
    fitting = [m for m in gpu.machine_types if m.gpu_count == gpu_count]
    if not fitting:
        counts = sorted({m.gpu_count for m in gpu.machine_types})
        raise ValidationError({"resources.gpuCount": f"{gpu_type} machines have {counts} GPUs, not {gpu_count}"})
    if machine_type is None:
        return gpu, fitting[0]
    chosen = next((m for m in fitting if m.machine_type == machine_type), None)
    if chosen is None:
        names = ", ".join(m.machine_type for m in fitting)
        raise ValidationError(
            {"resources.machineType": f"{machine_type!r} is not a {gpu_count}x {gpu_type} machine ({names})"}
        )
    return gpu, chosen
