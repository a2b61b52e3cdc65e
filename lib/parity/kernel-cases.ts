// The kernel's own list of iommu selftest cases, read from its C source
// (tools/testing/selftests/iommu/iommufd.c and iommufd_fail_nth.c), so the
// parity table is checked against the kernel rather than against a list we
// keep ourselves.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SELFTEST_DIR = 'tools/testing/selftests/iommu';
export const SELFTEST_FILES = ['iommufd.c', 'iommufd_fail_nth.c'] as const;

export interface KernelCase {
  /** The kselftest harness name: FIXTURE.VARIANT.TEST, or FIXTURE.TEST without variants, or TEST. */
  name: string;
  file: string;
}

/**
 * The harness's case names, in registration order: for every TEST_F (and
 * iommufd_fail_nth.c's TEST_FAIL_NTH, which expands to one) a case per
 * FIXTURE_VARIANT_ADD of its fixture, or one case if it has none; plain TEST()s
 * are named by themselves. Macro definitions (`#define TEST_FAIL_NTH(...)`) are
 * not cases.
 */
export function parseSelftestCases(source: string, file: string): KernelCase[] {
  const variants = new Map<string, string[]>();
  const tests: { fixture: string | null; test: string }[] = [];
  // Comments could hold a macro-looking line; the harness macros start a line.
  // A macro's body (`#define TEST_FAIL_NTH(...)` continued with backslashes)
  // holds a TEST_F line of its own that is not a case.
  const code = source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/^[ \t]*#[ \t]*define(?:[^\n]*\\\n)*[^\n]*$/gm, '');
  for (const m of code.matchAll(/^[ \t]*(FIXTURE_VARIANT_ADD|TEST_F|TEST_FAIL_NTH|TEST)\(\s*(\w+)\s*(?:,\s*(\w+)\s*)?\)/gm)) {
    const [, macro, a, b] = m;
    if (macro === 'FIXTURE_VARIANT_ADD') {
      if (!variants.has(a!)) variants.set(a!, []);
      variants.get(a!)!.push(b!);
    } else if (macro === 'TEST') {
      tests.push({ fixture: null, test: a! });
    } else {
      tests.push({ fixture: a!, test: b! });
    }
  }
  const cases: KernelCase[] = [];
  for (const { fixture, test } of tests) {
    if (fixture === null) {
      cases.push({ name: test, file });
      continue;
    }
    const vs = variants.get(fixture) ?? [];
    if (vs.length === 0) cases.push({ name: `${fixture}.${test}`, file });
    else for (const v of vs) cases.push({ name: `${fixture}.${v}.${test}`, file });
  }
  return cases;
}

/** Every case of the iommu selftests in a kernel tree. */
export function kernelSelftestCases(treeDir: string): KernelCase[] {
  return SELFTEST_FILES.flatMap((f) => parseSelftestCases(readFileSync(join(treeDir, SELFTEST_DIR, f), 'utf8'), f));
}
