// The kernel series the tool builds from Debian's archive (`--kernel-version`),
// each Debian's `linux-source-<series>` package: 6.1 (Debian 12's own kernel,
// no iommufd), 6.12 (the LTS, default), 7.2 (sid) and 7.3-rc (experimental).

export const KERNEL_SERIES = ['6.1', '6.12', '7.2', '7.3'] as const;
export type KernelSeries = (typeof KERNEL_SERIES)[number];
export const DEFAULT_KERNEL_SERIES: KernelSeries = '6.12';

export function parseKernelSeries(value: string): KernelSeries {
  if ((KERNEL_SERIES as readonly string[]).includes(value)) return value as KernelSeries;
  throw new RangeError(`unknown kernel version '${value}': use ${KERNEL_SERIES.join(', ')}`);
}

export function sourcePackageOf(series: string): string {
  return `linux-source-${series}`;
}
