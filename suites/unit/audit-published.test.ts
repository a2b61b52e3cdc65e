// The published audit (docs/audit/): npm test compares its run with it, so a
// change anywhere in what the report says fails until it is published again.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPublished, comparePublished, firstDifference, kernelsPageProblems, publishAudit, publishedKernels, PUBLISHED_AUDIT_DIR, readAuditJson } from '../../lib/audit/published.ts';
import { chromiumMissing, probePage } from '../../lib/audit/browser.ts';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';

describe('published audit (docs/audit/)', () => {
  // npm test's kernel (6.12): its part must be there.
  const publishedPath = join(PUBLISHED_AUDIT_DIR, '6.12.117', 'audit.json');
  const copy = () => readAuditJson(publishedPath);

  it("is in the repository, one passing part per kernel, side by side in docs/audit/audit.md, linked from the top of the README", () => {
    const kernels = publishedKernels();
    expect(kernels).to.include('6.12.117');
    const index = readFileSync(join(PUBLISHED_AUDIT_DIR, 'audit.md'), 'utf8');
    for (const k of kernels) {
      const j = readAuditJson(join(PUBLISHED_AUDIT_DIR, k, 'audit.json'));
      expect(j.verdict.ok, `the published audit of ${k} passed`).to.equal(true);
      expect(j.scenarios.length).to.be.greaterThan(100);
      for (const f of ['audit.md', 'audit.html']) expect(readFileSync(join(PUBLISHED_AUDIT_DIR, k, f), 'utf8').length).to.be.greaterThan(1000);
      expect(readFileSync(join(PUBLISHED_AUDIT_DIR, k, 'audit.md'), 'utf8')).to.match(/## What changes when you switch/);
      expect(index).to.include(`| ${k} | PASS`).and.include(j.generated).and.include(`(${k}/audit.md)`);
    }
    expect(index).to.match(/## What changes when you switch, per kernel/).and.match(/## The matrix: scenario x kernel x backend/);
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    const top = readme.split('\n').slice(0, 30).join('\n');
    expect(top).to.include('docs/audit/audit.md');
  });

  it("publish adds or replaces one kernel's part, keeps the others, and puts them side by side", () => {
    const dir = mkdtempSync(join(tmpdir(), 'published-audit-'));
    try {
      const later = copy();
      for (const p of Object.values(later.profiles)) p.kernel = '7.2.13';
      later.generated = '2099-01-01T00:00:00.000Z';
      (later.scenarios[0] as unknown as { backends: Record<string, { errno?: string }> }).backends['type1']!.errno = 'EOVERFLOW';
      const files = (name: string, j: object) => {
        const d = join(dir, 'runs', name);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'audit.json'), JSON.stringify(j));
        writeFileSync(join(d, 'audit.md'), `# ${name}\n`);
        // The real page: the side-by-side page's links must find their ids in it.
        writeFileSync(join(d, 'audit.html'), readFileSync(join(PUBLISHED_AUDIT_DIR, '6.12.117', 'audit.html')));
        return { markdown: join(d, 'audit.md'), json: join(d, 'audit.json'), html: join(d, 'audit.html') };
      };
      const pub = join(dir, 'docs');
      publishAudit(files('a', copy()), pub);
      publishAudit(files('b', later), pub);
      expect(publishedKernels(pub)).to.deep.equal(['6.12.117', '7.2.13']);
      expect(readAuditJson(join(pub, '6.12.117', 'audit.json')).generated).to.equal(copy().generated);
      const index = readFileSync(join(pub, 'audit.md'), 'utf8');
      expect(index).to.include('| 6.12.117 | PASS').and.include('| 7.2.13 | PASS').and.include('2099-01-01T00:00:00.000Z');
      const id = copy().scenarios[0]!.id;
      expect(index.split('\n').find((l) => l.startsWith(`| [\`${id}\`]`))).to.include('≠ EOVERFLOW');
      // The page, in headless Chromium (as the run's own page is checked): exactly that cell pair marked.
      const missing = chromiumMissing();
      if (!missing) {
        const html = readFileSync(join(pub, 'audit.html'), 'utf8');
        expect(kernelsPageProblems(html, pub, probePage)).to.deep.equal([]);
        const unmarked = html.replace(' class="differs-kernels">≠ EOVERFLOW', '>EOVERFLOW');
        expect(kernelsPageProblems(unmarked, pub, probePage).join('\n')).to.match(/cells marked as differing between kernels: 1, expected 2/);
        const broken = html.replace('href="7.2.13/audit.html#kd-', 'href="7.2.13/audit.html#nowhere-kd-');
        expect(kernelsPageProblems(broken, pub, probePage).join('\n')).to.match(/no id nowhere-kd-/);
      } else if (process.env.CI === 'true') throw new Error(`the side-by-side page cannot be checked in CI: ${missing}`);
      // A run of 7.2.13 is compared with 7.2.13's part only; 6.12's part is not touched by it.
      writeFileSync(join(dir, 'run.json'), JSON.stringify(later));
      const r = checkPublished(join(dir, 'run.json'), pub);
      expect(r).to.deep.include({ failures: 0 });
      expect(r.lines[0]).to.match(/^published audit: 7\.2\.13: current .*the part for 6\.12\.117 not compared: no run of that kernel here/);
      // Replacing: publishing 7.2.13 again overwrites its part.
      publishAudit(files('c', { ...later, generated: '2099-02-02T00:00:00.000Z' }), pub);
      expect(readAuditJson(join(pub, '7.2.13', 'audit.json')).generated).to.equal('2099-02-02T00:00:00.000Z');
      expect(existsSync(join(pub, '6.12.117', 'audit.html'))).to.equal(true);
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

  it('does not compare reports of different kernels, and says so; a kernel with no part is not compared', () => {
    const run = copy();
    for (const p of Object.values(run.profiles)) p.kernel = '7.3.0';
    const r = comparePublished(copy(), run);
    expect(r.compared).to.equal(false);
    expect(r.note).to.match(/published report is of .*6\.12.*this run of .*7\.3\.0/);
    const dir = mkdtempSync(join(tmpdir(), 'published-audit-'));
    try {
      writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
      const c = checkPublished(join(dir, 'run.json'));
      expect(c.failures).to.equal(0);
      expect(c.lines[0]).to.match(/not compared: docs\/audit\/ has parts for .*6\.12\.117.*this run is of .*7\.3\.0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails npm test on a stale report, and on a missing one, saying how to publish', () => {
    const dir = mkdtempSync(join(tmpdir(), 'published-audit-'));
    try {
      const run = copy();
      run.scenarios.reverse();
      (run.scenarios[0] as Record<string, unknown>)['title'] = 'changed';
      writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
      const stale = checkPublished(join(dir, 'run.json'));
      expect(stale.failures).to.equal(1);
      expect(stale.lines.at(-1)).to.match(/FAILED: docs\/audit\/6\.12\.117\/ differs from this run in 1 place.*audit --raw OUT\/vm --publish/);
      const missing = checkPublished(join(dir, 'run.json'), join(dir, 'nowhere'));
      expect(missing.failures).to.equal(1);
      expect(missing.lines[0]).to.match(/has no kernel's part/);
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
