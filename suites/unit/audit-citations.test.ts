// fixtures/audit/known-differences.json against the kernel trees its citations
// name: each citation is checked (lib/audit/source-check.ts: the function is
// defined, the excerpt is in its body, at the lines given) in the tree of every
// kernel it says it is true of, one test a kernel. A kernel whose tree is not on
// the machine is skipped, named and counted; CI fetches the trees of the
// kernels npm test boots (the VM runs use the same cache) and fails without
// them. And every entry cites source of each published kernel it applies to.
import { expect } from 'chai';
import { citationsOf, knownDifferenceAnchor, loadKnownDifferences, type KnownDifference } from '../../lib/audit/known-differences.ts';
import { PUBLISHED_AUDIT_DIR, publishedParts } from '../../lib/audit/published.ts';
import { cachedKernelTrees, checkCitation, citedKernels } from '../../lib/audit/source-check.ts';
import { extraVmRuns } from '../../lib/cli/test-all.ts';
import { DEFAULT_KERNEL_SERIES } from '../../lib/kbuild/series.ts';
import { ensureKernelSource, SetupError } from '../../lib/kbuild/source.ts';
import { skipBecause } from '../support/skip.ts';

const known: KnownDifference[] = loadKnownDifferences();
const label = (k: KnownDifference) => `${k.scenario} (${k.between.join(' vs ')}${k.when ? `, when ${JSON.stringify(k.when)}` : ''})`;

describe('audit: known differences cite kernel source true of each kernel they name', () => {
  let trees = new Map<string, string>();
  const fetchProblems: string[] = [];
  before(async function () {
    this.timeout(30 * 60_000);
    // The default series' tree is fetched when missing (as the audit of npm test builds from it); in CI also
    // the other series npm test boots, so that their citations are checked before the VM runs use the trees.
    const series = [DEFAULT_KERNEL_SERIES, ...(process.env.CI === 'true' ? extraVmRuns(DEFAULT_KERNEL_SERIES).map((r) => r.series) : [])];
    for (const s of series) {
      try {
        await ensureKernelSource({ series: s, log: (line) => console.log(`      ${line}`) });
      } catch (e) {
        if (!(e instanceof SetupError)) throw e;
        fetchProblems.push(`linux-source-${s}: ${e.message.split('\n')[0]}`);
      }
    }
    trees = cachedKernelTrees();
  });

  for (const kernel of citedKernels(known.flatMap((k) => k.source))) {
    it(`every citation naming ${kernel} is true of ${kernel}'s tree`, function () {
      const cited = known.flatMap((k) => citationsOf(k, kernel).map((s) => ({ k, s })));
      const tree = trees.get(kernel);
      if (!tree) {
        const why = `kernel ${kernel}'s tree is not in the cache: ${cited.length} citation(s) unchecked${fetchProblems.length ? ` (${fetchProblems.join('; ')})` : ''}`;
        if (process.env.CI === 'true' && extraVmRuns(DEFAULT_KERNEL_SERIES).concat([{ series: DEFAULT_KERNEL_SERIES, profiles: [] }]).some((r) => kernel.startsWith(`${r.series}.`))) throw new Error(`CI boots ${kernel}'s series: ${why}`);
        skipBecause(this, why);
      }
      const problems = cited.flatMap(({ k, s }) => {
        const p = checkCitation(tree, s, kernel);
        return p ? [`${label(k)}: ${p}`] : [];
      });
      expect(problems, `${problems.length} of ${cited.length} citations of ${kernel} are not true of ${tree}:\n${problems.join('\n')}`).to.deep.equal([]);
    });
  }

  it('every entry that explains a difference of a published part (docs/audit/<kernel>/<platform>/audit.json) cites that kernel, as fully as the others', function () {
    const parts = publishedParts();
    if (parts.length === 0) skipBecause(this, `${PUBLISHED_AUDIT_DIR} has no part`);
    const problems: string[] = [];
    // As the audit of that kernel requires (lib/audit/write.ts kernelCitationProblems): an entry that explains
    // a difference the part shows must say why in that kernel's source. (An entry of the part's platform that
    // explains nothing there, such as type1's wrap entries where type1 is refused and its wrap behaviour could
    // not be probed, needs no citation of it.)
    const counts = new Map<KnownDifference, Map<string, number>>();
    for (const part of parts) {
      const scenarios = part.json.scenarios as unknown as { comparisons: { state: string; known?: { anchor: string } }[] }[];
      const explaining = new Set(scenarios.flatMap((s) => s.comparisons.flatMap((c) => (c.state === 'explained' && c.known ? [c.known.anchor] : []))));
      for (const k of known) {
        if (!explaining.has(knownDifferenceAnchor(k))) continue;
        const n = citationsOf(k, part.kernel).length;
        if (n === 0) problems.push(`${label(k)}: applies to ${part.path} but cites none of ${part.kernel}'s source`);
        if (!counts.has(k)) counts.set(k, new Map());
        counts.get(k)!.set(part.kernel, n);
      }
    }
    // Code that changed between kernels is cited once per version of it: a kernel with fewer citations
    // than another lost one.
    for (const [k, byKernel] of counts) {
      if (new Set(byKernel.values()).size > 1) problems.push(`${label(k)}: cites kernels unevenly (${[...byKernel].map(([kernel, n]) => `${kernel}: ${n}`).join(', ')})`);
    }
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });
});
