// The VFIO selftests as an independent witness for the audit: where a VFIO
// selftest case (in one of its IOMMU modes) and an audit scenario (on the
// backend that is that mode) assert the same operation, the two must agree:
// the selftest passes exactly when the audit saw the kernel return what the
// selftest asserts. An explicit, small mapping, read against the selftest's
// source (tools/testing/selftests/vfio/vfio_dma_mapping_test.c of 7.2) and
// lib/audit/scenarios.ts.
import { existsSync, readFileSync } from 'node:fs';
import type { AuditRaw, BackendId } from '../audit/types.ts';
import type { KselftestCase } from './ktap.ts';

export interface WitnessCheck {
  scenario: string;
  /** Index of the step in the scenario's steps, or 'last'. */
  step: number | 'last';
  /** The errno NAME the selftest asserts ('OK' for success). */
  errno: string;
  /** Outputs the selftest asserts too (e.g. the unmapped size). */
  out?: Record<string, string>;
}

export interface WitnessEntry {
  /** FIXTURE.VARIANT.TEST of the VFIO selftest. */
  vfioCase: string;
  backend: BackendId;
  /** What the selftest asserts, in the audit's terms. */
  checks: WitnessCheck[];
  why: string;
}

/**
 * VFIO selftest IOMMU modes and the audit backend that is the same thing; the `iommufd` mode (libvfio's
 * iommu.c: the device cdev bound to /dev/iommu, IOMMU_IOAS_MAP/UNMAP, unmap-all as IOVA 0 and UINT64_MAX) is
 * the native backend, whose scenarios are the same operations as IOAS ioctls (lib/audit/scenarios.ts).
 */
const V2_MODES: [string, BackendId][] = [['vfio_type1v2_iommu', 'type1'], ['iommufd_compat_type1v2', 'compat-device'], ['iommufd', 'native']];
const V1_MODES: [string, BackendId][] = [['vfio_type1_iommu', 'type1'], ['iommufd_compat_type1', 'compat-device']];

export const AUDIT_WITNESS: readonly WitnessEntry[] = [
  ...V2_MODES.map(([mode, backend]): WitnessEntry => ({
    vfioCase: `vfio_dma_mapping_test.${mode}_anonymous.dma_map_unmap`,
    backend,
    // iommu_map() asserts MAP_DMA succeeds; __iommu_unmap() returns 0 and unmapped == region.size.
    checks: [
      { scenario: 'map-dma.baseline', step: 'last', errno: 'OK' },
      { scenario: 'unmap-dma.exact', step: 0, errno: 'OK' },
      { scenario: 'unmap-dma.exact', step: 1, errno: 'OK', out: { size: '65536' } },
    ],
    why: 'MAP_DMA of anonymous memory at a free aligned IOVA, then UNMAP_DMA of exactly that mapping, size written back',
  })),
  ...V1_MODES.map(([mode, backend]): WitnessEntry => ({
    vfioCase: `vfio_dma_mapping_test.${mode}_anonymous.dma_map_unmap`,
    backend,
    checks: [{ scenario: 'v1.unmap-inside', step: 0, errno: 'OK' }],
    why: 'MAP_DMA of anonymous memory in a v1 (VFIO_TYPE1_IOMMU) container',
  })),
  ...V2_MODES.map(([mode, backend]): WitnessEntry => ({
    vfioCase: `vfio_dma_map_limit_test.${mode}.unmap_all`,
    backend,
    // __iommu_unmap_all(): VFIO_DMA_UNMAP_FLAG_ALL returns 0 and writes back the size of everything mapped.
    checks: [{ scenario: 'unmap-dma.all', step: 'last', errno: 'OK', out: { size: '131072' } }],
    why: 'UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL over what is mapped, size written back',
  })),
  ...[...V2_MODES, ...V1_MODES].map(([mode, backend]): WitnessEntry => ({
    vfioCase: `vfio_dma_map_limit_test.${mode}.overflow`,
    backend,
    // region->iova = the last page, size 2 pages: __iommu_map() and __iommu_unmap() must both return -EOVERFLOW.
    checks: [
      { scenario: 'map-dma.iova-wraps', step: 'last', errno: 'EOVERFLOW' },
      { scenario: 'unmap-dma.iova-wraps', step: 'last', errno: 'EOVERFLOW' },
    ],
    why: 'MAP_DMA and UNMAP_DMA whose IOVA + size wraps past 2^64 (the audit runs them in a v2 container; type1 checks the wrap before the version matters)',
  })),
];

export type WitnessVerdict = 'agree' | 'DISAGREE' | 'not compared';

export interface WitnessRow {
  entry: WitnessEntry;
  vfioStatus: KselftestCase['status'] | 'absent';
  /** What the audit saw for each check, e.g. "map-dma.iova-wraps#0 EOVERFLOW". */
  audit: string[];
  verdict: WitnessVerdict;
  note?: string;
}

function stepText(scenario: string, index: number, errno: string, out?: Record<string, unknown>): string {
  return `${scenario}#${index} ${errno}${out && Object.keys(out).length ? ` ${JSON.stringify(out)}` : ''}`;
}

/**
 * Each mapped VFIO case against the audit of the same boot's viommu guest
 * (audit-raw.json). A case that skipped, or whose scenario the audit did not
 * run on that backend, is not compared (listed, with why).
 */
export function checkWitness(vfio: Map<string, KselftestCase>, auditRawPath: string): WitnessRow[] {
  const raw: AuditRaw | null = existsSync(auditRawPath) ? (JSON.parse(readFileSync(auditRawPath, 'utf8')) as AuditRaw) : null;
  return AUDIT_WITNESS.map((entry): WitnessRow => {
    const c = vfio.get(entry.vfioCase);
    const vfioStatus = c?.status ?? 'absent';
    if (!raw) return { entry, vfioStatus, audit: [], verdict: 'not compared', note: `no ${auditRawPath}` };
    const audit: string[] = [];
    let holds = true;
    for (const check of entry.checks) {
      const r = raw.scenarios.find((s) => s.id === check.scenario)?.results[entry.backend];
      if (!r || r.status !== 'ran') {
        return { entry, vfioStatus, audit, verdict: 'not compared', note: `the audit has no ${entry.backend} result for ${check.scenario}${r ? ` (${r.reason})` : ''}` };
      }
      const steps = r.kernel.steps;
      const index = check.step === 'last' ? steps.length - 1 : check.step;
      const step = steps[index];
      if (!step) return { entry, vfioStatus, audit, verdict: 'not compared', note: `${check.scenario} has no step ${index} on ${entry.backend}` };
      audit.push(stepText(check.scenario, index, step.errno, check.out ? Object.fromEntries(Object.keys(check.out).map((k) => [k, step.out?.[k]])) : undefined));
      holds &&= step.errno === check.errno && Object.entries(check.out ?? {}).every(([k, v]) => String(step.out?.[k]) === v);
    }
    if (vfioStatus !== 'pass' && vfioStatus !== 'fail') {
      return { entry, vfioStatus, audit, verdict: 'not compared', note: vfioStatus === 'absent' ? 'the VFIO selftests of this tree have no such case' : `the VFIO case ${vfioStatus === 'skip' ? `skipped: ${c?.reason ?? ''}` : 'did not run'}` };
    }
    return { entry, vfioStatus, audit, verdict: (vfioStatus === 'pass') === holds ? 'agree' : 'DISAGREE' };
  });
}
