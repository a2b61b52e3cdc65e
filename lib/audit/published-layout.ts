// Where the published audit lives: docs/audit/<kernel>/<platform>/ holds the reports (audit.md, audit.json,
// audit.html) of the last passing run on that kernel and IOMMU platform, one part each. The platform's
// folder is named from the platform the run's raw file recorded (lib/audit/targets.ts auditPlatform, e.g.
// 'intel-iommu with interrupt remapping' -> intel-iommu-with-interrupt-remapping), never from a profile
// name, so a new platform (a new device profile) is published and compared with no change here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';

export const PUBLISHED_AUDIT_DIR = join(PACKAGE_ROOT, 'docs', 'audit');

/**
 * The platform of a report from before the raw files recorded one: its device profile was `viommu`,
 * QEMU's intel-iommu with interrupt remapping (the name lib/audit/targets.ts gives that platform). It is
 * listed first, as the baseline the others are read against.
 */
export const BASELINE_PLATFORM = 'intel-iommu with interrupt remapping';

/** The parts of audit.json that the published report reads (format 1, lib/audit/report.ts auditJson). */
export interface AuditJsonFile {
  format: number;
  generated: string;
  profiles: Record<string, { state: string; kernel?: string; platform?: string; source?: string }>;
  backends: Record<string, { state?: string; reason?: string } & Record<string, unknown>>;
  scenarios: Array<{ id: string } & Record<string, unknown>>;
  knownDifferences: Array<{ anchor: string } & Record<string, unknown>>;
  verdict: { ok: boolean } & Record<string, unknown>;
  host?: unknown;
}

export function readAuditJson(path: string): AuditJsonFile {
  const j = JSON.parse(readFileSync(path, 'utf8')) as AuditJsonFile;
  if (j.format !== 1 || !Array.isArray(j.scenarios) || !Array.isArray(j.knownDifferences)) {
    throw new Error(`${path}: not an audit.json of format 1`);
  }
  return j;
}

/** The kernel a report is of (its profiles ran one kernel; the audit fails otherwise), or null. */
export function reportKernel(j: AuditJsonFile): string | null {
  const kernels = [...new Set(Object.values(j.profiles).flatMap((p) => (p.state === 'ran' && p.kernel ? [p.kernel] : [])))];
  return kernels.length === 1 ? kernels[0]! : null;
}

/**
 * The IOMMU platform a report's device ran on, as its raw file recorded it; BASELINE_PLATFORM for a report
 * whose viommu profile ran but recorded none (before platforms were recorded); null when no profile ran
 * on a platform (or two different ones did).
 */
export function reportPlatform(j: AuditJsonFile): string | null {
  const ran = Object.entries(j.profiles).filter(([, p]) => p.state === 'ran');
  const named = [...new Set(ran.flatMap(([, p]) => (p.platform ? [p.platform] : [])))];
  if (named.length === 1) return named[0]!;
  if (named.length > 1) return null;
  return ran.some(([name]) => name === 'viommu') ? BASELINE_PLATFORM : null;
}

/** The folder name of a platform: its recorded name with every run of other characters than [A-Za-z0-9._-] made one '-'. */
export function platformKey(platform: string): string {
  const key = platform.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
  if (key === '' || key === '.' || key === '..') throw new RangeError(`platform name ${JSON.stringify(platform)} gives no folder name`);
  return key;
}

/**
 * A platform's name, shortened for a column heading (lib/audit/targets.ts auditPlatform's phrases; any other
 * name is kept as it is): 'intel-iommu without interrupt remapping, allow_unsafe_interrupts:
 * vfio_iommu_type1=Y, iommufd=N' -> 'intel-iommu, no IR, unsafe type1=Y iommufd=N'.
 */
export function platformLabel(platform: string): string {
  return platform
    .replace(/ with interrupt remapping/, ', IR')
    .replace(/ without interrupt remapping/, ', no IR')
    .replace(/allow_unsafe_interrupts: vfio_iommu_type1=(\w), iommufd=(\w)/, 'unsafe type1=$1 iommufd=$2');
}

/** One published part: the report of one passing run on one kernel and platform. */
export interface PublishedPart {
  kernel: string;
  platform: string;
  /** The platform's folder name (platformKey). */
  key: string;
  /** The part's folder relative to docs/audit/, '/'-separated: KERNEL/KEY. */
  path: string;
  json: AuditJsonFile;
}

const byVersion = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/** Platforms in the order the reports show them: the baseline first, then by name. */
export function platformOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === BASELINE_PLATFORM) return -1;
  if (b === BASELINE_PLATFORM) return 1;
  return a.localeCompare(b);
}

/**
 * Every part of docs/audit/ (DIR/KERNEL/KEY/audit.json), kernels oldest first and, within a kernel, the
 * baseline platform first. A part whose folder is not named after the platform its audit.json records, or
 * an audit.json straight in a kernel's folder (the layout before platforms), is an error: nothing is guessed.
 */
export function publishedParts(dir = PUBLISHED_AUDIT_DIR): PublishedPart[] {
  if (!existsSync(dir)) return [];
  const parts: PublishedPart[] = [];
  for (const kernel of readdirSync(dir).filter((d) => /^\d+\.\d+/.test(d)).sort(byVersion)) {
    if (existsSync(join(dir, kernel, 'audit.json'))) {
      throw new Error(`${join(dir, kernel, 'audit.json')}: a part without its platform (the layout before platforms); move it to ${kernel}/<platform>/ or publish it again`);
    }
    for (const key of readdirSync(join(dir, kernel))) {
      const file = join(dir, kernel, key, 'audit.json');
      if (!existsSync(file)) continue;
      const json = readAuditJson(file);
      const platform = reportPlatform(json);
      if (platform === null) throw new Error(`${file}: its profiles ran on no one platform`);
      if (platformKey(platform) !== key) throw new Error(`${file}: the report of platform '${platform}', whose folder is ${platformKey(platform)}, not ${key}`);
      if (reportKernel(json) !== kernel) throw new Error(`${file}: the report of kernel ${reportKernel(json) ?? '(none)'}, not ${kernel}`);
      parts.push({ kernel, platform, key, path: `${kernel}/${key}`, json });
    }
  }
  return parts.sort((a, b) => byVersion(a.kernel, b.kernel) || platformOrder(a.platform, b.platform));
}

/** The kernels docs/audit/ has a part for, oldest first. */
export function publishedKernels(dir = PUBLISHED_AUDIT_DIR): string[] {
  return [...new Set(publishedParts(dir).map((p) => p.kernel))];
}
