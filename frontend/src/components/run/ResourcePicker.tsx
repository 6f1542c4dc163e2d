/** GPU type → GPU count → machine type, with hourly prices from the catalog. */
import { formatCents } from '../../lib/format'
import { gpuCounts, machinesFor, resourcesFor, type Catalog, type Resources } from '../../lib/resources'
import { SelectField } from '../forms'

export function ResourcePicker({ catalog, value, onChange }: {
  catalog: Catalog
  value: Resources
  onChange: (value: Resources) => void
}) {
  const counts = gpuCounts(catalog, value.gpuType)
  const machines = machinesFor(catalog, value.gpuType, value.gpuCount)
  const pick = (gpuType: string, gpuCount: number) => onChange(resourcesFor(catalog, gpuType, gpuCount, value.spot))
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
