/** The GPU catalog: GPU type → GPU count → machine types (smallest first, the API's default). */
import type { NewRunContextQuery } from '../gql/graphql'

export type Catalog = NewRunContextQuery['gpuCatalog']

export interface Resources {
  gpuType: string
  gpuCount: number
  machineType: string
  spot: boolean
}

/** Machine types for a GPU type and count, smallest first. */
export function machinesFor(catalog: Catalog, gpuType: string, gpuCount: number) {
  const gpu = catalog.find((g) => g.gpuType === gpuType)
  return (gpu?.machineTypes ?? []).filter((m) => m.gpuCount === gpuCount).sort((a, b) => a.vcpu - b.vcpu)
}

/** The GPU counts a GPU type comes in, ascending. */
export function gpuCounts(catalog: Catalog, gpuType: string): number[] {
  const gpu = catalog.find((g) => g.gpuType === gpuType)
  return [...new Set(gpu?.machineTypes.map((m) => m.gpuCount))].sort((a, b) => a - b)
}

/** A valid choice for a GPU type: the count if it exists (else the smallest) on its smallest machine. */
export function resourcesFor(catalog: Catalog, gpuType: string, gpuCount: number, spot = false): Resources {
  const counts = gpuCounts(catalog, gpuType)
  const count = counts.includes(gpuCount) ? gpuCount : (counts[0] ?? 1)
  return { gpuType, gpuCount: count, machineType: machinesFor(catalog, gpuType, count)[0]?.machineType ?? '', spot }
}

export function defaultResources(catalog: Catalog): Resources {
  return resourcesFor(catalog, catalog[0]?.gpuType ?? '', 0)
}
