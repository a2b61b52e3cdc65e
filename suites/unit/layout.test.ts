// THE LAYOUT CHECK: every struct size, alignment, member offset and size,
// constant and ioctl number lib/uapi declares, against what cc computes from
// the real Linux 6.12 headers; plus completeness against the headers
// themselves and main.c's ioctl table. Then the same values against every
// other Debian kernel already in the cache (7.2, 7.3-rc, 6.1 after a
// `vm --kernel-version` run): each struct and constant lib/uapi knows that
// that kernel defines (completeness for 7.x's additions is issue 13's).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../lib/kbuild/cache.ts';
import { DEFAULT_KERNEL_SERIES, sourcePackageOf } from '../../lib/kbuild/series.ts';
import { SetupError, cachedDebianSources, describeOrigin, ensureKernelHeaders, ensureKernelSource, type KernelSource } from '../../lib/kbuild/source.ts';
import { IOMMUFD_IOCTL_OPS, IOMMU_TEST_CMD_OP, UAPI_HEADERS, VFIO_H_OMITTED_STRUCTS, VFIO_IOMMU_MAP_DMA, _IO, _IOC_DIR, _IOC_NR, _IOC_SIZE, _IOC_TYPE, _IOR, _IOW, _IOWR } from '../../lib/uapi/index.ts';
import type { UapiHeader } from '../../lib/uapi/index.ts';
import {
  compareLayout,
  constantNamesIn,
  headersAsDefinedIn,
  ioctlTableIn,
  layoutCheckProgram,
  layoutChecks,
  runLayoutProgram,
  structNamesIn,
  withoutAbsentMembers,
} from '../../lib/uapi/layout_check.ts';
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

function headerPath(trees: KernelTrees, h: UapiHeader): string {
  return h.root === 'headers' ? join(trees.headersDir, h.path) : join(trees.sourceDir, h.path);
}

function headerNamed(path: string): UapiHeader {
  const h = UAPI_HEADERS.find((x) => x.path === path);
  if (!h) throw new Error(`lib/uapi registers no header ${path}`);
  return h;
}

function failWithList(what: string, lines: readonly string[]): void {
  if (lines.length > 0) expect.fail(`${lines.length} ${what}:\n  ${lines.join('\n  ')}`);
}

describe('layout check against the Linux headers', function () {
  let trees: KernelTrees;
  let checks: LayoutCheck[];
  let actual: Map<string, number>;

  // Why the check cannot run here, if it cannot (set by before()).
  let unavailable: string | undefined;

  before(async function () {
    // First run may extract the source tree and run headers_install.
    this.timeout(30 * 60_000);
    const cannotRun = (reason: string) => {
      // In CI a missing kernel tree or compiler is a broken setup, not a reason to skip.
      if (process.env.CI === 'true') throw new Error(`layout check cannot run in CI: ${reason}`);
      unavailable = reason;
    };
    try {
      const src = await ensureKernelSource({ log: (line) => console.log(`      ${line}`) });
      trees = { sourceDir: src.dir, headersDir: await ensureKernelHeaders(src, (line) => console.log(`      ${line}`)) };
    } catch (e) {
      if (!(e instanceof SetupError)) throw e;
      return cannotRun(`kernel source unavailable: ${e.message}`);
    }
    if (spawnSync('cc', ['--version']).error) return cannotRun('no C compiler (cc) on PATH');
    checks = layoutChecks(UAPI_HEADERS, IOCTL_OPS, WELL_KNOWN_IOCTLS);
    const program = layoutCheckProgram(UAPI_HEADERS, checks, ['linux/fs.h', 'linux/kvm.h']);
    actual = runLayoutProgram(program, trees, cacheDir('layout-check'));
  });

  // Skipping per test (not from before()) gives every skipped test its reason.
  beforeEach(function () {
    if (unavailable !== undefined) skipBecause(this, unavailable);
  });

  it('compiles a program that prints every value lib/uapi declares', function () {
    expect(checks.length).to.be.greaterThan(500);
    failWithList('values the C program did not print', checks.filter((c) => !actual.has(c.key)).map((c) => c.key));
  });

  it('matches every struct size, alignment, member offset and member size', function () {
    failWithList('layout mismatches', compareLayout(checks.filter((c) => /^(sizeof|_Alignof|offsetof)\(/.test(c.key)), actual));
  });

  it('matches every constant and ioctl number, and the _IO* encoders on well-known ioctls', function () {
    failWithList('constant mismatches', compareLayout(checks.filter((c) => !/^(sizeof|_Alignof|offsetof|min_size)\(/.test(c.key)), actual));
  });

  it("matches the ioctl min_size of main.c's iommufd_ioctl_ops (offsetofend of the last member)", function () {
    failWithList('min_size mismatches', compareLayout(checks.filter((c) => c.key.startsWith('min_size(')), actual));
    const table = ioctlTableIn(readFileSync(join(trees.sourceDir, 'drivers/iommu/iommufd/main.c'), 'utf8'));
    expect(table.length, 'IOCTL_OP rows parsed from main.c').to.be.greaterThan(10);
    const ours = IOCTL_OPS.map((op) => `${op.ioctl}: struct ${op.struct.name}, last ${op.last}`).sort();
    const kernel = table.map((row) => `${row.ioctl}: struct ${row.struct}, last ${row.last}`).sort();
    expect(ours).to.deep.equal(kernel);
  });

  for (const path of ['linux/iommufd.h', 'drivers/iommu/iommufd/iommufd_test.h']) {
    it(`declares every struct of ${path}`, function () {
      const h = headerNamed(path);
      const declared = new Set(h.structs.map((s) => s.name));
      const inHeader = structNamesIn(readFileSync(headerPath(trees, h), 'utf8'));
      expect(inHeader.length).to.be.greaterThan(2);
      failWithList(`structs of ${path} missing from lib/uapi`, inHeader.filter((n) => !declared.has(n)));
      failWithList(`structs lib/uapi assigns to ${path} that it does not define`, [...declared].filter((n) => !inHeader.includes(n)));
    });

    it(`declares every enumerator and #define of ${path}`, function () {
      const h = headerNamed(path);
      const inHeader = constantNamesIn(readFileSync(headerPath(trees, h), 'utf8'));
      expect(inHeader.length).to.be.greaterThan(10);
      failWithList(`constants of ${path} missing from lib/uapi`, inHeader.filter((n) => !(n in h.constants)));
    });
  }

  it('declares every struct of linux/vfio.h except those listed as omitted, each with a reason', function () {
    const h = headerNamed('linux/vfio.h');
    const inHeader = structNamesIn(readFileSync(headerPath(trees, h), 'utf8'));
    const declared = new Set(h.structs.map((s) => s.name));
    const omitted = new Set(Object.keys(VFIO_H_OMITTED_STRUCTS));
    failWithList('vfio.h structs neither declared nor listed as omitted', inHeader.filter((n) => !declared.has(n) && !omitted.has(n)));
    failWithList('VFIO_H_OMITTED_STRUCTS entries vfio.h does not define', [...omitted].filter((n) => !inHeader.includes(n)));
    failWithList('structs both declared and listed as omitted', [...omitted].filter((n) => declared.has(n)));
  });
});

// The other kernels in use here: checked for what they define, not for completeness.
for (const src of cachedDebianSources().filter((s) => s.origin.kind === 'debian' && s.origin.package !== sourcePackageOf(DEFAULT_KERNEL_SERIES))) {
  describe(`layout check against the Linux ${src.version} headers (${describeOrigin(src.origin)}): what lib/uapi knows that it defines`, function () {
    let checks: LayoutCheck[];
    let actual: Map<string, number>;
    let unavailable: string | undefined;
    /** Structs this kernel defines without some of our members: an older kernel's, before they were added. */
    let older: Set<string>;

    before(async function () {
      this.timeout(10 * 60_000);
      if (spawnSync('cc', ['--version']).error) {
        unavailable = 'no C compiler (cc) on PATH';
        return;
      }
      const trees: KernelTrees = { sourceDir: src.dir, headersDir: await ensureKernelHeaders(src as KernelSource, (line) => console.log(`      ${line}`)) };
      const read = (h: UapiHeader) => {
        const p = headerPath(trees, h);
        return existsSync(p) ? readFileSync(p, 'utf8') : null;
      };
      const { headers, absent, absentMembers } = headersAsDefinedIn(UAPI_HEADERS, read);
      if (absent.length > 0) console.log(`      not in ${src.version}, so not checked there: ${absent.length} (${absent.slice(0, 8).join(', ')}${absent.length > 8 ? ', ...' : ''})`);
      const mainC = join(src.dir, 'drivers/iommu/iommufd/main.c');
      const kernelOps = existsSync(mainC) ? new Set(ioctlTableIn(readFileSync(mainC, 'utf8')).map((r) => `${r.ioctl} ${r.struct} ${r.last}`)) : new Set<string>();
      const ops = IOCTL_OPS.filter((op) => kernelOps.has(`${op.ioctl} ${op.struct.name} ${op.last}`));
      checks = withoutAbsentMembers(layoutChecks(headers, ops, WELL_KNOWN_IOCTLS), absentMembers);
      older = new Set(absentMembers.keys());
      actual = runLayoutProgram(layoutCheckProgram(headers, checks, ['linux/fs.h', 'linux/kvm.h']), trees, cacheDir('layout-check'));
    });

    beforeEach(function () {
      if (unavailable !== undefined) skipBecause(this, unavailable);
    });

    it('matches every member offset and member size', function () {
      failWithList('layout mismatches', compareLayout(checks.filter((c) => /^(offsetof\(|sizeof\(\(\()/.test(c.key)), actual));
    });

    // uAPI structs grow at the end (argsz, min_size): a newer kernel's larger struct keeps ours as its prefix,
    // and an older kernel's smaller one is a prefix of ours, short of members it does not have yet (each
    // member it has is at our offset: the test above).
    it('has every struct at our size, or larger: an extension at the end (listed; mirroring it is issue 13), or smaller by members it lacks', function () {
      const whole = checks.filter((c) => /^(sizeof|_Alignof)\(struct \w+\)$/.test(c.key));
      const extended = whole.filter((c) => (actual.get(c.key) ?? c.expected) > c.expected);
      if (extended.length > 0) console.log(`      extended in ${src.version}: ${extended.map((c) => `${c.key} ${c.expected} -> ${actual.get(c.key)}`).join(', ')}`);
      const shorter = whole.filter((c) => c.key.startsWith('sizeof(') && (actual.get(c.key) ?? c.expected) < c.expected && older.has(/struct (\w+)/.exec(c.key)![1]!));
      if (shorter.length > 0) console.log(`      older in ${src.version} (members added since): ${shorter.map((c) => `${c.key} ${c.expected} -> ${actual.get(c.key)}`).join(', ')}`);
      failWithList('structs smaller than lib/uapi says', compareLayout(whole.filter((c) => !extended.includes(c) && !shorter.includes(c)), actual));
    });

    it('matches every constant and ioctl number', function () {
      failWithList('constant mismatches', compareLayout(checks.filter((c) => !/^(sizeof|_Alignof|offsetof|min_size)\(/.test(c.key)), actual));
    });

    it("matches the min_size of main.c's iommufd_ioctl_ops rows that name the same struct and last member", function () {
      failWithList('min_size mismatches', compareLayout(checks.filter((c) => c.key.startsWith('min_size(')), actual));
    });
  });
}
