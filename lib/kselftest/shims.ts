// Stand-ins for what a kernel tree's own selftests use but its own headers
// lack, so the selftests of the tree in use compile against that tree's
// headers. Each shim is applied only where the tree needs it: the identifier
// is used by the selftest sources and appears in none of the headers they
// include (probed per tree, never chosen by version). Kept minimal; each one
// says why it exists.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Shim {
  /** The identifier the selftests use. */
  name: string;
  /** Which selftest folder (tools/testing/selftests/<suite>) uses it. */
  suite: 'iommu' | 'vfio';
  /** Compiler flags that stand in for it. */
  flags: string[];
  /** Header text for shims that need a definition rather than a -D (written to a file and -include'd). */
  header?: string;
  why: string;
}

export const SHIMS: readonly Shim[] = [
  {
    name: 'in_data_type',
    suite: 'iommu',
    // Backported into Debian 6.12.117's iommufd.c without the uAPI change that made
    // struct iommu_hw_info's __reserved field an in_data_type/out_data_type union:
    // the newer ABI keeps in_data_type in out_data_type's slot.
    flags: ['-Din_data_type=out_data_type'],
    why: "Debian 6.12.117's backported get_hw_info tests; 6.12's struct iommu_hw_info has no in_data_type",
  },
  {
    name: 'IOMMU_HW_INFO_TYPE_DEFAULT',
    suite: 'iommu',
    flags: ['-DIOMMU_HW_INFO_TYPE_DEFAULT=0'],
    why: 'the same backport names the newer enum value (0 in the newer uAPI)',
  },
  {
    name: 'IOMMU_HW_INFO_FLAG_INPUT_TYPE',
    suite: 'iommu',
    flags: ['-DIOMMU_HW_INFO_FLAG_INPUT_TYPE=1'],
    why: 'the same backport names the newer flag (1 << 0 in the newer uAPI)',
  },
  {
    name: 'MOCK_FLAGS_DEVICE_PASID',
    suite: 'iommu',
    flags: ['-DMOCK_FLAGS_DEVICE_PASID=4'],
    why: "Debian 6.12.117's backported PASID tests; 6.12's iommufd_test.h has no PASID mock flag (1 << 2 upstream)",
  },
  {
    name: 'MOCK_PASID_WIDTH',
    suite: 'iommu',
    flags: ['-DMOCK_PASID_WIDTH=20'],
    why: 'the same backport; the mock PASID width upstream',
  },
  {
    name: 'calloc_assert',
    suite: 'vfio',
    flags: [],
    // 7.3's libvfio/assert.h defines it this way; 7.2.13's library calls it and nothing defines it.
    header: [
      '#define calloc_assert(_nmemb, _size) ({ \\',
      '\tsize_t __nmemb = (_nmemb); \\',
      '\tsize_t __size = (_size); \\',
      '\tvoid *__ptr = calloc(__nmemb, __size); \\',
      '\tVFIO_ASSERT_NOT_NULL(__ptr, "calloc(%zu, %zu) failed", __nmemb, __size); \\',
      '\t__ptr; \\',
      '})',
      '',
    ].join('\n'),
    why: "7.2.13's VFIO library calls calloc_assert, which nothing in that tree defines (7.3 defines it in libvfio/assert.h)",
  },
];

function filesUnder(dir: string, match: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, match));
    else if (match(name)) out.push(p);
  }
  return out;
}

const word = (name: string) => new RegExp(`\\b${name}\\b`);

/**
 * The shims a tree's selftests need: each identifier that the suite's sources
 * use and that none of the headers they include (the installed uAPI headers,
 * the tree's iommufd_test.h, the suite's own headers) mentions.
 */
export function shimsNeeded(treeDir: string, includeDir: string, suite: Shim['suite']): Shim[] {
  const selftests = join(treeDir, 'tools/testing/selftests', suite);
  const sources = filesUnder(selftests, (n) => n.endsWith('.c') || n.endsWith('.h')).map((f) => readFileSync(f, 'utf8'));
  const read = (files: string[]) => files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8'));
  // The uAPI headers and the mock's iommufd_test.h declare (a member, an enum value, a #define) ...
  const uapi = read([...filesUnder(join(includeDir, 'linux'), (n) => n.endsWith('.h')), join(treeDir, 'drivers/iommu/iommufd/iommufd_test.h')]);
  // ... the suite's own headers only #define (they also use the names, e.g. in designated initialisers).
  const own = read(filesUnder(selftests, (n) => n.endsWith('.h')));
  const defines = (name: string) =>
    uapi.some((h) => new RegExp(`(#\\s*define\\s+${name}\\b)|(\\b${name}\\b\\s*[=,;:\\[])`).test(h)) ||
    own.some((h) => new RegExp(`#\\s*define\\s+${name}\\b`).test(h));
  return SHIMS.filter((s) => s.suite === suite && sources.some((src) => word(s.name).test(src)) && !defines(s.name));
}
