// The host a host audit (`audit --host`) ran on, at the top of its reports: which
// device, which kernel (uname -r and /proc/version) and what platform the model
// was given. A VM audit has no such section.
import type { HostFacts } from './types.ts';

/** The facts as label/value pairs, in the order the reports show them. */
export function hostFactLines(h: HostFacts): [string, string][] {
  return [
    ['device', `${h.device.bdf} (PCI ${h.device.id}${h.device.class ? `, class ${h.device.class}` : ''}), IOMMU group ${h.device.iommuGroup}: ${h.device.groupDevices.join(', ')}`],
    ['kernel', h.kernel],
    ['/proc/version', h.procVersion],
    ['command line', h.cmdline],
    ...(h.machine ? [['machine', h.machine] as [string, string]] : []),
    ...(h.cpu ? [['CPU', h.cpu] as [string, string]] : []),
    [
      'IOMMU',
      `${h.iommu.unit} (Intel VT-d, cap ${h.iommu.cap ?? '?'}, ecap ${h.iommu.ecap ?? '?'}): interrupt remapping ${h.iommu.interruptRemapping ? 'on' : 'off'}, ` +
        `vfio_iommu_type1.allow_unsafe_interrupts ${h.iommu.allowUnsafeInterrupts ? 'Y' : 'N'}, page sizes ${h.iommu.pgsizeBitmap}, aperture ${h.iommu.aperture}`,
    ],
    ['reserved regions', h.iommu.reservedRegions.join(', ') || 'none'],
  ];
}

export function hostMarkdown(h: HostFacts, text: (s: string) => string): string[] {
  return [
    `**Host audit** (\`audit --host\`: the device half on this host, no VM):`,
    '',
    ...hostFactLines(h).map(([k, v]) => `- ${k}: ${text(v)}`),
    '',
  ];
}

export function hostHtml(h: HostFacts, escape: (s: string) => string): string {
  return `<section id="host"><p><b>Host audit</b> (<code>audit --host</code>: the device half on this host, no VM):</p><ul>${hostFactLines(h)
    .map(([k, v]) => `<li>${escape(k)}: ${escape(v)}</li>`)
    .join('')}</ul></section>`;
}
