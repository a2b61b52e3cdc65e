// THE LAYOUT CHECK: every struct size, alignment, member offset and size,
// constant and ioctl number lib/uapi declares, against what cc computes from
// the real Linux headers; plus completeness against the headers themselves
// and main.c's ioctl table. lib/uapi describes 7.2.13's headers and keeps
// the names 6.12.117's have that 7.2 dropped: each kernel's headers are
// checked for what THEY define (found by parsing them, never by version),
// struct by struct and member by member, and what lib/uapi declares beyond
// that is listed by name as not in that kernel's header. The two kernels
// lib/uapi mirrors (MIRRORED_SERIES) must also have nothing lib/uapi lacks;
// any other Debian kernel already in the cache (6.1, 7.3-rc after a
// `vm --kernel-version` run) is checked the same way, its extras listed.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../lib/kbuild/cache.ts';
import { sourcePackageOf, type KernelSeries } from '../../lib/kbuild/series.ts';
import { SetupError, cachedDebianSources, describeOrigin, ensureKernelHeaders, ensureKernelSource, type KernelSource } from '../../lib/kbuild/source.ts';
import { IOMMUFD_IOCTL_OPS, IOMMU_TEST_CMD_OP, UAPI_HEADERS, VFIO_H_OMITTED_STRUCTS, VFIO_IOMMU_MAP_DMA, _IO, _IOC_DIR, _IOC_NR, _IOC_SIZE, _IOC_TYPE, _IOR, _IOW, _IOWR } from '../../lib/uapi/index.ts';
import type { UapiHeader } from '../../lib/uapi/index.ts';
import { compareLayout, headersAsDefinedIn, ioctlTableIn, layoutCheckProgram, layoutChecks, runLayoutProgram, structNamesIn, undeclaredIn } from '../../lib/uapi/layout_check.ts';
import type { KernelTrees, LayoutCheck } from '../../lib/uapi/layout_check.ts';
import { skipBecause } from '../support/skip.ts';

const IOCTL_OPS = [...IOMMUFD_IOCTL_OPS, IOMMU_TEST_CMD_OP];

// Well-known ioctls from other headers: an independent check of the _IO*
// encoders and decoders (sizes: size_t and long are 8, struct kvm_cpuid2 is 8).
const WELL_KNOWN_IOCTLS: LayoutCheck[] = [
  { key: 'BLKGETSIZE64', expr: 'BLKGETSIZE64', expected: _IOR(0x12, 114, 8) },
  { key: 'FS_IOC_GETFLAGS', expr: 'FS_IOC_GETFLAGS', expected: _IOR('f', 1, 8) },
  { key: 'FS_IOC_SETFLAGS', expr: 'FS_IOC_SETFLAGS', expected: _IOW('f', 2, 8) },
  { key: 'KVM_CREATE_VM', expr: 'KVM_CREATE_VM', expected: _IO(0xae, 0x01) },
  { key: 'KVM_GET_SUPPORTED_CPUID', expr: 'KVM_GET_SUPPORTED_CPUID', expected: _IOWR(0xae, 0x05, 8) },
  ...(['_IOC_DIR', '_IOC_TYPE', '_IOC_NR', '_IOC_SIZE'] as const).flatMap((decoder) => {
    const fn = { _IOC_DIR, _IOC_TYPE, _IOC_NR, _IOC_SIZE }[decoder];
    return [
      { key: `${decoder}(KVM_SET_USER_MEMORY_REGION)`, expr: `${decoder}(KVM_SET_USER_MEMORY_REGION)`, expected: fn(0x4020ae46) },
      { key: `${decoder}(VFIO_IOMMU_MAP_DMA)`, expr: `${decoder}(VFIO_IOMMU_MAP_DMA)`, expected: fn(VFIO_IOMMU_MAP_DMA) },
    ];
  }),
];

/** The kernels lib/uapi describes: the one it mirrors (7.2) and the LTS before it whose names it keeps (6.12). */
const MIRRORED_SERIES: readonly KernelSeries[] = ['7.2', '6.12'];

/** The headers whose every enumerator and #define lib/uapi declares (of vfio.h, it declares what it uses). */
const ALL_CONSTANTS_OF = ['linux/iommufd.h', 'drivers/iommu/iommufd/iommufd_test.h'];

// One look-up of Debian's archive per series for the whole file (each asks apt).
const sources = new Map<KernelSeries, Promise<KernelSource>>();
function mirroredSource(series: KernelSeries): Promise<KernelSource> {
  if (!sources.has(series)) sources.set(series, ensureKernelSource({ series, log: (line) => console.log(`      ${line}`) }));
  return sources.get(series)!;
}

function headerPath(trees: KernelTrees, h: UapiHeader): string {
  return h.root === 'headers' ? join(trees.headersDir, h.path) : join(trees.sourceDir, h.path);
}

function failWithList(what: string, lines: readonly string[]): void {
  if (lines.length > 0) expect.fail(`${lines.length} ${what}:\n  ${lines.join('\n  ')}`);
}

function printList(what: string, lines: readonly string[]): void {
  console.log(`      ${what}: ${lines.length}${lines.length > 0 ? `\n        ${lines.join('\n        ')}` : ''}`);
}

const isLayoutKey = (c: LayoutCheck) => /^(sizeof|_Alignof|offsetof)\(/.test(c.key);
const isMinSizeKey = (c: LayoutCheck) => c.key.startsWith('min_size(');

/**
 * The checks of one kernel's header tree. `mirrored`: lib/uapi must declare
 * everything that tree defines (else what it lacks is only printed).
 */
function describeTree(title: string, source: () => Promise<KernelSource>, mirrored: boolean): void {
  describe(title, function () {
    let trees: KernelTrees;
    let read: (h: UapiHeader) => string | null;
    let checks: LayoutCheck[];
    let actual: Map<string, number>;
    let mainTable: { ioctl: string; struct: string; last: string }[];
    // Why the check cannot run here, if it cannot (set by before()).
    let unavailable: string | undefined;

    before(async function () {
      // The first run may extract the source tree and run headers_install.
      this.timeout(30 * 60_000);
      const cannotRun = (reason: string) => {
        // In CI a missing kernel tree or compiler is a broken setup, not a reason to skip.
        if (process.env.CI === 'true') throw new Error(`layout check cannot run in CI: ${reason}`);
        unavailable = reason;
      };
      let src: KernelSource;
      try {
        src = await source();
        trees = { sourceDir: src.dir, headersDir: await ensureKernelHeaders(src, (line) => console.log(`      ${line}`)) };
      } catch (e) {
        if (!(e instanceof SetupError)) throw e;
        return cannotRun(`kernel source unavailable: ${e.message}`);
      }
      if (spawnSync('cc', ['--version']).error) return cannotRun('no C compiler (cc) on PATH');
      console.log(`      ${src.version} (${describeOrigin(src.origin)}): ${trees.headersDir}`);
      read = (h) => {
        const p = headerPath(trees, h);
        return existsSync(p) ? readFileSync(p, 'utf8') : null;
      };
      const { headers, absent } = headersAsDefinedIn(UAPI_HEADERS, read);
      const mainC = join(trees.sourceDir, 'drivers/iommu/iommufd/main.c');
      mainTable = existsSync(mainC) ? ioctlTableIn(readFileSync(mainC, 'utf8')) : [];
      const rows = new Set(mainTable.map((r) => `${r.ioctl} ${r.struct} ${r.last}`));
      const ops = IOCTL_OPS.filter((op) => rows.has(`${op.ioctl} ${op.struct.name} ${op.last}`));
      const opsAbsent = IOCTL_OPS.filter((op) => !ops.includes(op)).map((op) => `main.c: IOCTL_OP(${op.ioctl}, struct ${op.struct.name}, ${op.last})`);
      checks = layoutChecks(headers, ops, WELL_KNOWN_IOCTLS);
      actual = runLayoutProgram(layoutCheckProgram(headers, checks, ['linux/fs.h', 'linux/kvm.h']), trees, cacheDir('layout-check'));
      console.log(`      checked: ${checks.length} values (${checks.filter(isLayoutKey).length} layout, ${checks.filter((c) => !isLayoutKey(c) && !isMinSizeKey(c)).length} constants and ioctl numbers, ${checks.filter(isMinSizeKey).length} min_size)`);
      printList("declared by lib/uapi, not in this kernel's header (not checked here)", [...absent, ...opsAbsent]);
    });

    // Skipping per test (not from before()) gives every skipped test its reason.
    beforeEach(function () {
      if (unavailable !== undefined) skipBecause(this, unavailable);
    });

    it("compiles a program that prints every value lib/uapi declares that this kernel's headers define", function () {
      // A kernel older than iommufd (6.1) still has vfio.h's.
      expect(checks.length).to.be.greaterThan(mirrored ? 500 : 100);
      failWithList('values the C program did not print', checks.filter((c) => !actual.has(c.key)).map((c) => c.key));
    });

    it('matches every struct size, alignment, member offset and member size (each struct with the members this header gives it)', function () {
      failWithList('layout mismatches', compareLayout(checks.filter(isLayoutKey), actual));
    });

    it('matches every constant and ioctl number, and the _IO* encoders on well-known ioctls', function () {
      failWithList('constant mismatches', compareLayout(checks.filter((c) => !isLayoutKey(c) && !isMinSizeKey(c)), actual));
    });

    it("matches the min_size of main.c's iommufd_ioctl_ops rows that name the same struct and last member", function () {
      failWithList('min_size mismatches', compareLayout(checks.filter(isMinSizeKey), actual));
    });

    const lacking = (): string[] => [
      ...undeclaredIn(UAPI_HEADERS, read, { exempt: { 'linux/vfio.h': Object.keys(VFIO_H_OMITTED_STRUCTS) }, constantsOf: ALL_CONSTANTS_OF }),
      ...mainTable
        .filter((row) => !IOCTL_OPS.some((op) => op.ioctl === row.ioctl && op.struct.name === row.struct && op.last === row.last))
        .map((row) => `main.c: IOCTL_OP(${row.ioctl}, struct ${row.struct}, ${row.last})`),
    ];

    if (mirrored) {
      it("declares every struct, struct member, iommufd enumerator and #define, and main.c ioctl row of this kernel's headers (vfio.h: but VFIO_H_OMITTED_STRUCTS)", function () {
        expect(mainTable.length, 'IOCTL_OP rows parsed from main.c').to.be.greaterThan(10);
        failWithList("names in this kernel's headers that lib/uapi lacks", lacking());
      });
    } else {
      it("lists what this kernel's headers define that lib/uapi lacks (a kernel lib/uapi does not mirror)", function () {
        printList("in this kernel's headers, not in lib/uapi", lacking());
      });
    }
  });
}

for (const series of MIRRORED_SERIES) {
  describeTree(`layout check against the Linux ${series} headers (linux-source-${series}, a kernel lib/uapi mirrors)`, () => mirroredSource(series), true);
}

const mirroredPackages = new Set(MIRRORED_SERIES.map(sourcePackageOf));
for (const src of cachedDebianSources().filter((s) => s.origin.kind === 'debian' && !mirroredPackages.has(s.origin.package))) {
  describeTree(`layout check against the Linux ${src.version} headers (${describeOrigin(src.origin)}): what lib/uapi knows that it defines`, async () => src, false);
}

describe('VFIO_H_OMITTED_STRUCTS', function () {
  it('names only structs lib/uapi does not declare, each with a reason', function () {
    const declared = new Set(UAPI_HEADERS.find((h) => h.path === 'linux/vfio.h')!.structs.map((s) => s.name));
    failWithList('structs both declared and listed as omitted', Object.keys(VFIO_H_OMITTED_STRUCTS).filter((n) => declared.has(n)));
    failWithList('omitted structs without a reason', Object.entries(VFIO_H_OMITTED_STRUCTS).filter(([, why]) => why.trim() === '').map(([n]) => n));
  });

  it("names only structs some mirrored kernel's vfio.h defines", async function () {
    this.timeout(30 * 60_000);
    const defined = new Set<string>();
    for (const series of MIRRORED_SERIES) {
      let src: KernelSource;
      try {
        src = await mirroredSource(series);
      } catch (e) {
        if (!(e instanceof SetupError) || process.env.CI === 'true') throw e;
        return skipBecause(this, `kernel source ${series} unavailable: ${e.message.split('\n')[0]}`);
      }
      const headersDir = await ensureKernelHeaders(src);
      for (const n of structNamesIn(readFileSync(join(headersDir, 'linux/vfio.h'), 'utf8'))) defined.add(n);
    }
    failWithList('VFIO_H_OMITTED_STRUCTS entries no mirrored vfio.h defines', Object.keys(VFIO_H_OMITTED_STRUCTS).filter((n) => !defined.has(n)));
  });
});
