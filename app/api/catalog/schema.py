import strawberry

from app.api.catalog.types import GpuTypeType
from app.catalog.catalog import gpu_catalog


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="GPU types → machine types with vCPU, memory and hourly prices (cents).")
    def gpu_catalog(self) -> list[GpuTypeType]:
        return [GpuTypeType.from_catalog(g) for g in gpu_catalog()]
