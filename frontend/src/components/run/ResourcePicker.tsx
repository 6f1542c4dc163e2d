/** GPU type → GPU count → machine type, with hourly prices from the catalog. */
import type { NewRunContextQuery } from '../../gql/graphql'
import { formatCents } from '../../lib/format'
import { SelectField } from '../forms'

export type Catalog = NewRunContextQuery['gpuCatalog']

export interface Resources {
  gpuType: string
  gpuCount: number
  machineType: string
  spot: boolean
}

/** The smallest machine for a GPU type and count (the API's default too). */
function machinesFor(catalog: Catalog, gpuType: string, gpuCount: number) {
  const gpu = catalog.find((g) => g.gpuType === gpuType)
  return (gpu?.machineTypes ?? []).filter((m) => m.gpuCount === gpuCount).sort((a, b) => a.vcpu - b.vcpu)
}

export function defaultResources(catalog: Catalog): Resources {
  const gpu = catalog[0]
  const count = Math.min(...(gpu?.machineTypes.map((m) => m.gpuCount) ?? [1]))
  const machine = gpu ? machinesFor(catalog, gpu.gpuType, count)[0] : undefined
  return { gpuType: gpu?.gpuType ?? '', gpuCount: count, machineType: machine?.machineType ?? '', spot: false }
}

export function ResourcePicker({ catalog, value, onChange }: {
  catalog: Catalog
  value: Resources
  onChange: (value: Resources) => void
}) {
  const gpu = catalog.find((g) => g.gpuType === value.gpuType)
  const counts = [...new Set(gpu?.machineTypes.map((m) => m.gpuCount) ?? [])].sort((a, b) => a - b)
  const machines = machinesFor(catalog, value.gpuType, value.gpuCount)
  const pick = (gpuType: string, gpuCount: number) => {
    const available = machinesFor(catalog, gpuType, gpuCount)
    const count = available.length ? gpuCount : Math.min(...(catalog.find((g) => g.gpuType === gpuType)?.machineTypes.map((m) => m.gpuCount) ?? [1]))
    onChange({ ...value, gpuType, gpuCount: count, machineType: machinesFor(catalog, gpuType, count)[0]?.machineType ?? '' })
  }
  return (
    <fieldset className="fieldset">
      <legend>Resources</legend>
      <div className="row">
        <SelectField name="resources.gpuType" label="GPU type" value={value.gpuType}
          onChange={(e) => pick(e.target.value, value.gpuCount)}>
          {catalog.map((g) => (
            <option key={g.gpuType} value={g.gpuType}>
              {g.displayName}
            </option>
          ))}
        </SelectField>
        <SelectField name="resources.gpuCount" label="GPU count" value={value.gpuCount}
          onChange={(e) => pick(value.gpuType, Number(e.target.value))}>
          {counts.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </SelectField>
      </div>
      <SelectField name="resources.machineType" label="Machine type" value={value.machineType}
        onChange={(e) => onChange({ ...value, machineType: e.target.value })}>
        {machines.map((m) => (
          <option key={m.machineType} value={m.machineType}>
            {m.machineType} — {m.vcpu} vCPU, {m.memoryGib} GiB — {formatCents(value.spot ? m.pricePerHour.spotCents : m.pricePerHour.onDemandCents)}/h
          </option>
        ))}
      </SelectField>
      <label className="check">
        <input type="checkbox" checked={value.spot} onChange={(e) => onChange({ ...value, spot: e.target.checked })} />
        Use spot instances (cheaper, may take longer to schedule)
      </label>
    </fieldset>
  )
}
