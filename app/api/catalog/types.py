from __future__ import annotations

import strawberry

from app.catalog.catalog import GpuType, MachineType


@strawberry.type(name="HourlyPrice")
class HourlyPriceType:
    on_demand_cents: int
    spot_cents: int


@strawberry.type(name="MachineType")
class MachineTypeType:
    machine_type: str
    vcpu: int
    memory_gib: int
    gpu_count: int
    price_per_hour: HourlyPriceType

    @classmethod
    def from_catalog(cls, m: MachineType) -> MachineTypeType:
        return cls(
            machine_type=m.machine_type,
            vcpu=m.vcpu,
            memory_gib=m.memory_gib,
            gpu_count=m.gpu_count,
            price_per_hour=HourlyPriceType(on_demand_cents=m.on_demand_cents, spot_cents=m.spot_cents),
        )


@strawberry.type(name="GpuType")
class GpuTypeType:
    gpu_type: str
    display_name: str
    machine_types: list[MachineTypeType]

    @classmethod
    def from_catalog(cls, g: GpuType) -> GpuTypeType:
        return cls(
            gpu_type=g.gpu_type,
            display_name=g.display_name,
            machine_types=[MachineTypeType.from_catalog(m) for m in g.machine_types],
        )
