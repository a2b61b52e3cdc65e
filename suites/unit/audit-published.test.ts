// The published audit (docs/audit/<kernel>/<platform>/): npm test compares each of its audits with the part
// of its kernel and platform, so a change anywhere in what a report says fails until it is published again,
// and a platform whose part was never published fails too.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BASELINE_PLATFORM,
  checkPublished,
  comparePublished,
  firstDifference,
  platformKey,
  platformLabel,
  publishAudit,
  publishedKernels,
  publishedParts,
  PUBLISHED_AUDIT_DIR,
  readAuditJson,
  reportKernel,
  reportPlatform,
  type AuditJsonFile,
} from '../../lib/audit/published.ts';
import { publishedMatrix, publishedPageProblems, renderPublishedHtml, renderPublishedMarkdown } from '../../lib/audit/render-published.ts';
import { chromiumMissing, probePage } from '../../lib/audit/browser.ts';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';
import { NPM_TEST_6_1_AUDIT_PLATFORMS, type1HalfAudits } from '../../lib/cli/test-all.ts';

const BASELINE_KEY = 'intel-iommu-with-interrupt-remapping';
const NOIR = 'intel-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=N, iommufd=N';

describe('published audit (docs/audit/KERNEL/PLATFORM/)', () => {
  // npm test's kernel (6.12) on the baseline platform: its part must be there.
  const publishedPath = join(PUBLISHED_AUDIT_DIR, '6.12.117', BASELINE_KEY, 'audit.json');
  const copy = () => readAuditJson(publishedPath);
  const onPlatform = (j: AuditJsonFile, platform: string, kernel?: string) => {
    for (const p of Object.values(j.profiles)) {
      if (kernel) p.kernel = kernel;
    }
    j.profiles['viommu']!.platform = platform;
    return j;
  };

  it('is in the repository, one passing part per kernel and platform, side by side in docs/audit/audit.md, linked from the top of the README', () => {
    const parts = publishedParts();
    expect(parts.map((p) => p.path)).to.include.members([`6.12.117/${BASELINE_KEY}`, `7.2.13/${BASELINE_KEY}`]);
    expect(publishedKernels()).to.include.members(['6.12.117', '7.2.13']);
    const index = readFileSync(join(PUBLISHED_AUDIT_DIR, 'audit.md'), 'utf8');
    for (const p of parts) {
      expect(p.json.verdict.ok, `the published audit of ${p.path} passed`).to.equal(true);
      expect(p.json.scenarios.length).to.be.greaterThan(100);
      for (const f of ['audit.md', 'audit.html']) expect(readFileSync(join(PUBLISHED_AUDIT_DIR, p.path, f), 'utf8').length).to.be.greaterThan(1000);
      expect(readFileSync(join(PUBLISHED_AUDIT_DIR, p.path, 'audit.md'), 'utf8')).to.match(/## What changes when you switch/);
      expect(index).to.include(`| ${p.kernel} | ${p.platform.replace(/_/g, '\\_')} | PASS`).and.include(p.json.generated).and.include(`(${p.path}/audit.md)`);
    }
    // A VMM author reads what changes first, then the matrix; which run made each part is said.
    const order = ['## What changes when you switch, per platform and kernel', '## The parts: which run produced each, and when', '## The matrix: scenario x mode x platform x kernel'].map((h) => index.indexOf(h));
    expect(order.every((i) => i > 0)).to.equal(true);
    expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    expect(readme.split('\n').slice(0, 30).join('\n')).to.include('docs/audit/audit.md');
  });

  it("names a platform's folder from the platform the audit recorded, so a new platform needs no code", () => {
    expect(platformKey(BASELINE_PLATFORM)).to.equal(BASELINE_KEY);
    expect(platformKey(NOIR)).to.equal('intel-iommu-without-interrupt-remapping-allow_unsafe_interrupts-vfio_iommu_type1-N-iommufd-N');
    expect(platformKey('virtio-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=Y, iommufd=Y')).to.equal('virtio-iommu-without-interrupt-remapping-allow_unsafe_interrupts-vfio_iommu_type1-Y-iommufd-Y');
    expect(() => platformKey('/..')).to.throw(RangeError);
    expect(platformLabel(NOIR)).to.equal('intel-iommu, no IR, unsafe type1=N iommufd=N');
    expect(platformLabel('amd-iommu with interrupt remapping')).to.equal('amd-iommu, IR');
    expect(platformLabel('something new')).to.equal('something new');
    // A report from before platforms were recorded ran on viommu: the baseline.
    const legacy = copy();
    delete legacy.profiles['viommu']!.platform;
    expect(reportPlatform(legacy)).to.equal(BASELINE_PLATFORM);
    expect(reportPlatform(onPlatform(copy(), NOIR))).to.equal(NOIR);
  });

  it('publish adds or replaces one (kernel, platform) part, keeps the others, and puts them side by side', () => {
    const dir = mkdtempSync(join(tmpdir(), 'published-audit-'));
    try {
      const files = (name: string, j: object) => {
        const d = join(dir, 'runs', name);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'audit.json'), JSON.stringify(j));
        writeFileSync(join(d, 'audit.md'), `# ${name}\n`);
        // The real page: the side-by-side page's links must find their ids in it.
        writeFileSync(join(d, 'audit.html'), readFileSync(join(PUBLISHED_AUDIT_DIR, '6.12.117', BASELINE_KEY, 'audit.html')));
        return { markdown: join(d, 'audit.md'), json: join(d, 'audit.json'), html: join(d, 'audit.html') };
      };
      const pub = join(dir, 'docs');
      const later = onPlatform(copy(), BASELINE_PLATFORM, '7.2.13');
      later.generated = '2099-01-01T00:00:00.000Z';
      const id = later.scenarios[0]!.id;
      (later.scenarios[0] as unknown as { backends: Record<string, { errno?: string }> }).backends['type1']!.errno = 'EOVERFLOW';
      // A platform no code names: its part is made from the name the report records.
      const amd = onPlatform(copy(), 'amd-iommu with interrupt remapping');
      amd.generated = '2099-03-03T00:00:00.000Z';
      publishAudit(files('a', copy()), pub);
      publishAudit(files('b', later), pub);
      publishAudit(files('c', amd), pub);
      expect(publishedParts(pub).map((p) => p.path)).to.deep.equal([`6.12.117/${BASELINE_KEY}`, '6.12.117/amd-iommu-with-interrupt-remapping', `7.2.13/${BASELINE_KEY}`]);
      expect(readAuditJson(join(pub, '6.12.117', BASELINE_KEY, 'audit.json')).generated).to.equal(copy().generated);
      const index = readFileSync(join(pub, 'audit.md'), 'utf8');
      expect(index).to.include('| 7.2.13 | intel-iommu with interrupt remapping | PASS').and.include('2099-01-01T00:00:00.000Z').and.include('| 6.12.117 | amd-iommu with interrupt remapping | PASS');
      expect(index).to.include('### On amd-iommu with interrupt remapping');
      // The matrix: the changed cell differs between parts (bold), and every mode difference links to its explanation.
      const row = index.split('\n').find((l) => l.startsWith(`| [\`${id}\`]`))!;
      expect(row).to.include('**EOVERFLOW**');
      const m = publishedMatrix(pub);
      expect(m.rows.find((r) => r.id === id)!.differsAcrossParts).to.deep.equal(['type1']);
      const linked = m.rows.flatMap((r) => r.cells.flat().filter((c) => c.into));
      expect(linked.length).to.be.greaterThan(100);
      for (const c of linked) expect(c.into!.html).to.match(/^(6\.12\.117|7\.2\.13)\/[A-Za-z0-9._-]+\/audit\.html#kd-/);
      // The page, in headless Chromium (as the run's own page is checked).
      const missing = chromiumMissing();
      if (!missing) {
        const html = readFileSync(join(pub, 'audit.html'), 'utf8');
        expect(publishedPageProblems(html, pub, probePage)).to.deep.equal([]);
        const unmarked = html.replace(/<td class="cell differs-mode" /, '<td class="cell" ');
        expect(publishedPageProblems(unmarked, pub, probePage).join('\n')).to.match(/cells marked as differing between modes: \d+, expected \d+/);
        const broken = html.replace(`href="7.2.13/${BASELINE_KEY}/audit.html#kd-`, `href="7.2.13/${BASELINE_KEY}/audit.html#nowhere-kd-`);
        expect(publishedPageProblems(broken, pub, probePage).join('\n')).to.match(/no id nowhere-kd-/);
      } else if (process.env.CI === 'true') throw new Error(`the side-by-side page cannot be checked in CI: ${missing}`);
      // Replacing: publishing 7.2.13 again overwrites its part only.
      publishAudit(files('d', { ...later, generated: '2099-02-02T00:00:00.000Z' }), pub);
      expect(readAuditJson(join(pub, '7.2.13', BASELINE_KEY, 'audit.json')).generated).to.equal('2099-02-02T00:00:00.000Z');
      expect(readAuditJson(join(pub, '6.12.117', 'amd-iommu-with-interrupt-remapping', 'audit.json')).generated).to.equal('2099-03-03T00:00:00.000Z');
      expect(existsSync(join(pub, '6.12.117', BASELINE_KEY, 'audit.html'))).to.equal(true);
      // Two names, one folder: refused, nothing overwritten.
      expect(() => publishAudit(files('e', onPlatform(copy(), 'amd-iommu with interrupt remapping!')), pub)).to.throw(/holds platform 'amd-iommu with interrupt remapping', not/);
      // A part whose folder does not name its platform, or the layout before platforms, is an error, not a guess.
      mkdirSync(join(pub, '6.12.117', 'elsewhere'));
      writeFileSync(join(pub, '6.12.117', 'elsewhere', 'audit.json'), JSON.stringify(amd));
      expect(() => publishedParts(pub)).to.throw(/whose folder is amd-iommu-with-interrupt-remapping, not elsewhere/);
      rmSync(join(pub, '6.12.117', 'elsewhere'), { recursive: true });
      writeFileSync(join(pub, '7.2.13', 'audit.json'), JSON.stringify(later));
      expect(() => publishedParts(pub)).to.throw(/a part without its platform/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is current against a run that says the same, whenever and wherever that run was made', () => {
    const run = copy();
    run.generated = '2099-01-01T00:00:00.000Z';
    for (const p of Object.values(run.profiles)) p.source = '/elsewhere/audit-raw.json';
    expect(comparePublished(copy(), run)).to.deep.include({ compared: true, drift: [] });
  });

  it('names each scenario, known difference and verdict field that changed', () => {
    const run = copy();
    const s = run.scenarios[0]! as { id: string; backends: Record<string, { errno?: string }> };
    s.backends['type1']!.errno = 'EPERM';
    run.scenarios.pop();
    run.knownDifferences[0]!['summary'] = 'something else';
    run.verdict.ok = false;
    const { compared, drift } = comparePublished(copy(), run);
    expect(compared).to.equal(true);
    expect(drift.some((d) => d.startsWith(`scenario ${s.id}: backends.type1.errno`) && d.includes('"EPERM"'))).to.equal(true);
    expect(drift.some((d) => d.includes('in the published report, not in this run'))).to.equal(true);
    expect(drift.some((d) => d.startsWith(`known difference ${run.knownDifferences[0]!.anchor}: summary`))).to.equal(true);
    expect(drift.some((d) => d.startsWith('verdict.ok'))).to.equal(true);
  });

  it('does not compare reports of different kernels or platforms, and says so', () => {
    const other = onPlatform(copy(), BASELINE_PLATFORM, '7.3.0');
    const r = comparePublished(copy(), other);
    expect(r.compared).to.equal(false);
    expect(r.note).to.match(/published report is of .*6\.12.*this run of .*7\.3\.0/);
    const noir = comparePublished(copy(), onPlatform(copy(), NOIR));
    expect(noir.compared).to.equal(false);
    expect(noir.note).to.include(`platform ${NOIR}`);
  });

  describe('npm test against the part of its kernel and platform', () => {
    let dir: string;
    let pub: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'published-audit-'));
      pub = join(dir, 'docs');
      // Two parts: the baseline platform and viommu-noir's, on 6.12.117.
      for (const [platform, j] of [[BASELINE_PLATFORM, copy()], [NOIR, onPlatform(copy(), NOIR)]] as const) {
        mkdirSync(join(pub, '6.12.117', platformKey(platform)), { recursive: true });
        writeFileSync(join(pub, '6.12.117', platformKey(platform), 'audit.json'), JSON.stringify(j));
      }
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const check = (j: AuditJsonFile, publish?: string) => {
      writeFileSync(join(dir, 'run.json'), JSON.stringify(j));
      return checkPublished(join(dir, 'run.json'), pub, publish);
    };

    it("is current when the run says what its platform's part says, and names the parts it did not compare", () => {
      const r = check(onPlatform(copy(), NOIR));
      expect(r.failures).to.equal(0);
      expect(r.lines[0]).to.match(new RegExp(`^published audit: 6\\.12\\.117/${platformKey(NOIR)}: current .*not compared, no run of theirs here: 6\\.12\\.117/${BASELINE_KEY}`));
    });

    it("fails on a drifted part, printing what differs and how to publish the run", () => {
      const run = onPlatform(copy(), NOIR);
      (run.scenarios[3] as Record<string, unknown>)['title'] = 'changed';
      const r = check(run, '`npx iommufd-conformance audit --raw /o/viommu-noir --raw /o/mock --publish`');
      expect(r.failures).to.equal(1);
      expect(r.lines[0]).to.match(new RegExp(`^published audit: STALE: scenario ${run.scenarios[3]!.id}: title: .* -> "changed"`));
      expect(r.lines.at(-1)).to.match(new RegExp(`FAILED: docs/audit/6\\.12\\.117/${platformKey(NOIR)}/ differs from this run in 1 place.*--raw /o/viommu-noir --raw /o/mock --publish`));
      // The baseline part is another platform's: the drift of the noir run is not laid at its door.
      expect(r.lines.join('\n')).not.to.include(BASELINE_KEY);
    });

    it('fails, saying so, where the kernel is published but this platform is not', () => {
      const r = check(onPlatform(copy(), 'virtio-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=N, iommufd=N'));
      expect(r.failures).to.equal(1);
      expect(r.lines[0]).to.match(/FAILED: NOT PUBLISHED: docs\/audit\/6\.12\.117\/virtio-iommu-without-interrupt-remapping-allow_unsafe_interrupts-vfio_iommu_type1-N-iommufd-N\/ \(platform 'virtio-iommu .*' on 6\.12\.117\) does not exist/);
    });

    it('does not compare a kernel no part is of (a user tree, a later release), and says so; no part at all fails', () => {
      const r = check(onPlatform(copy(), NOIR, '7.3.0'));
      expect(r.failures).to.equal(0);
      expect(r.lines[0]).to.match(/not compared: docs\/audit\/ has parts for kernels 6\.12\.117, this run is of .*7\.3\.0/);
      writeFileSync(join(dir, 'run.json'), JSON.stringify(copy()));
      const none = checkPublished(join(dir, 'run.json'), join(dir, 'nowhere'));
      expect(none.failures).to.equal(1);
      expect(none.lines[0]).to.match(/has no part/);
    });
  });

  // 6.1: no iommufd, so type1 runs alone; compat and native are blocked by what the kernel lacks, probed.
  it("shows a mode the part's kernel lacks as blocked with the probed reason: no difference, the switch not available", () => {
    const dir = mkdtempSync(join(tmpdir(), 'published-audit-'));
    try {
      const lacks = 'no /dev/iommu: /dev/iommu does not exist and the kernel has no iommufd';
      const old = onPlatform(copy(), BASELINE_PLATFORM, '6.1.192');
      for (const b of ['compat-device', 'compat-mock', 'native']) old.backends[b] = { profile: b === 'compat-mock' ? 'mock' : 'viommu', state: 'skipped', reason: lacks };
      for (const s of old.scenarios as unknown as { backends: Record<string, unknown>; comparisons: { state: string; known?: unknown }[] }[]) {
        for (const b of ['compat-device', 'compat-mock', 'native']) s.backends[b] = { status: 'skipped', reason: lacks };
        for (const c of s.comparisons) (c.state = 'not-compared'), delete c.known;
      }
      const pub = join(dir, 'docs');
      for (const j of [copy(), old]) {
        const d = join(pub, reportKernel(j)!, BASELINE_KEY);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'audit.json'), JSON.stringify(j));
        writeFileSync(join(d, 'audit.html'), readFileSync(join(PUBLISHED_AUDIT_DIR, '6.12.117', BASELINE_KEY, 'audit.html')));
        writeFileSync(join(d, 'audit.md'), '# part\n');
      }
      const m = publishedMatrix(pub);
      const oldIdx = m.parts.findIndex((p) => p.kernel === '6.1.192');
      for (const r of m.rows) {
        expect(r.cells[oldIdx]!.map((c) => c.value)).to.deep.equal([r.cells[1 - oldIdx]![0]!.value, 'blocked', 'blocked', 'blocked']);
        expect(r.cells[oldIdx]!.slice(1).every((c) => c.blocked === lacks && !c.into)).to.equal(true);
        // The same copy on both kernels: a blocked cell differs from nothing.
        expect(r.differsAcrossParts).to.deep.equal([]);
      }
      const index = renderPublishedMarkdown(pub);
      expect(index).to.include(`| 6.1.192 | type1: OK; compat-device, native: blocked (${lacks}) | not available: compat-device: blocked`);
      expect(index).to.include('On 6.1.192: not available: compat-device, native: blocked');
      expect(index).to.match(/Scenarios whose result changes \(6\.1\.192: not available, 6\.12\.117: \d+\)/);
      expect(index).not.to.match(/\| scenario \| 6\.1\.192/);
      const missing = chromiumMissing();
      if (!missing) {
        const html = renderPublishedHtml(pub);
        expect(publishedPageProblems(html, pub, probePage)).to.deep.equal([]);
        const untitled = html.replace(/ title="no \/dev\/iommu[^"]*"( data-platform)/, '$1');
        expect(publishedPageProblems(untitled, pub, probePage).join('\n')).to.match(/blocked, but its title is absent/);
      } else if (process.env.CI === 'true') throw new Error(`the side-by-side page cannot be checked in CI: ${missing}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the first difference between two JSON values by path', () => {
    expect(firstDifference({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).to.equal(undefined);
    expect(firstDifference({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] })).to.equal('a[1].b: 2 -> 3');
    expect(firstDifference({ a: 1 }, { a: 1, c: 'x' })).to.equal('c: (absent) -> "x"');
  });
});

// 6.1's type1 half (issue 14): npm test audits it on each published 6.1 platform, so those parts cannot go stale.
describe('npm test: the 6.1 audits it runs (type1 only: 6.1 has no iommufd)', () => {
  it('runs one 6.1 audit per platform beside the default kernel, none beside 6.1 itself or a kernel not from Debian', () => {
    expect(type1HalfAudits({ kernelVersion: '6.12', flavour: 'base' })).to.deep.equal(NPM_TEST_6_1_AUDIT_PLATFORMS.map((platform) => ({ series: '6.1', platform })));
    expect(type1HalfAudits({ kernelVersion: '7.2', flavour: 'debug' }).map((r) => r.platform)).to.deep.equal([...NPM_TEST_6_1_AUDIT_PLATFORMS]);
    expect(type1HalfAudits({ kernelVersion: '6.1', flavour: 'base' })).to.deep.equal([]);
    expect(type1HalfAudits({ kernelVersion: '6.12', kernel: '/tmp/bzImage', flavour: 'base' })).to.deep.equal([]);
    expect(type1HalfAudits({ kernelVersion: '6.12', kernelSrc: '/tmp/linux', flavour: 'base' })).to.deep.equal([]);
  });

  it('compares every published 6.1 part: one audit per part, each of the type1 half alone', () => {
    const parts = publishedParts().filter((p) => p.kernel.startsWith('6.1.'));
    // viommu-noir-unsafe is left out: on 6.1 it is viommu-noir-unsafe-type1's platform (no iommufd parameter).
    expect(parts.length).to.equal(NPM_TEST_6_1_AUDIT_PLATFORMS.length);
    for (const p of parts) {
      const backends = p.json.backends;
      expect(backends['type1']!.state, p.path).to.equal('ran');
      for (const b of ['compat-device', 'compat-mock', 'native']) {
        expect(backends[b]!.state, `${p.path} ${b}`).to.equal('skipped');
        expect(backends[b]!.reason, `${p.path} ${b}`).to.match(/^no \/dev\/iommu: /);
      }
    }
  });
});
