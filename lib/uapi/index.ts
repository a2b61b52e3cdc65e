// The uAPI layer: ioctl encoding, the struct codec, and one module per kernel
// header. UAPI_HEADERS is the registry the layout check walks: every struct
// layout and constant declared, grouped by the header that defines it.
import * as ioctl from './ioctl.ts';
import * as iommufd from './iommufd.ts';
import * as iommufdTest from './iommufd_test.ts';
import * as vfio from './vfio.ts';
import { isStructLayout } from './layout.ts';
import type { AnyStructLayout } from './layout.ts';

export * from './ioctl.ts';
export * from './layout.ts';
export * from './iommufd.ts';
export * from './iommufd_test.ts';
export * from './vfio.ts';
export * from './vfio_caps.ts';

export interface UapiHeader {
  /** Where the header lives: the headers_install tree, or the kernel source tree (iommufd_test.h is not a uapi header). */
  readonly root: 'headers' | 'source';
  /** Path under that root. */
  readonly path: string;
  /** Path a C file gives #include, relative to the -I directory for `root`. */
  readonly include: string;
  readonly structs: readonly AnyStructLayout[];
  /** The header's constants declared here, by C name: ioctl numbers, enum values, #define values. */
  readonly constants: Readonly<Record<string, number>>;
}

// A module's constants are its exports named in C style (not starting with a
// lowercase letter) whose value is a number, or a one-character string
// standing for a C char constant such as IOMMUFD_TYPE (';').
function constantsOf(mod: Record<string, unknown>, exclude: readonly string[] = []): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(mod)) {
    if (/^[a-z]/.test(name) || exclude.includes(name)) continue;
    if (typeof value === 'number') out[name] = value;
    else if (typeof value === 'string' && value.length === 1) out[name] = value.charCodeAt(0);
  }
  return out;
}

function structsOf(mod: Record<string, unknown>): AnyStructLayout[] {
  return Object.values(mod).filter(isStructLayout);
}

export const UAPI_HEADERS: readonly UapiHeader[] = Object.freeze([
  { root: 'headers', path: 'linux/ioctl.h', include: 'linux/ioctl.h', structs: [], constants: constantsOf(ioctl) },
  { root: 'headers', path: 'linux/iommufd.h', include: 'linux/iommufd.h', structs: structsOf(iommufd), constants: constantsOf(iommufd) },
  {
    root: 'source',
    path: 'drivers/iommu/iommufd/iommufd_test.h',
    include: 'iommufd_test.h',
    structs: structsOf(iommufdTest),
    constants: constantsOf(iommufdTest, iommufdTest.NOT_IN_IOMMUFD_TEST_H),
  },
  { root: 'headers', path: 'linux/vfio.h', include: 'linux/vfio.h', structs: structsOf(vfio), constants: constantsOf(vfio) },
] satisfies UapiHeader[]);

/** Every struct layout declared in lib/uapi. */
export const ALL_STRUCTS: readonly AnyStructLayout[] = Object.freeze(UAPI_HEADERS.flatMap((h) => h.structs));
