// The published audit (docs/audit/): npm test compares its run with it, so a
// change anywhere in what the report says fails until it is published again.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPublished, comparePublished, firstDifference, PUBLISHED_AUDIT_DIR, readAuditJson } from '../../lib/audit/published.ts';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';

describe('published audit (docs/audit/)', () => {
  const publishedPath = join(PUBLISHED_AUDIT_DIR, 'audit.json');
  const copy = () => readAuditJson(publishedPath);

  it('is in the repository, passed, and linked from the top of the README', () => {
    const j = copy();
    expect(j.verdict.ok, 'the published audit passed').to.equal(true);
    expect(j.scenarios.length).to.be.greaterThan(100);
    for (const f of ['audit.md', 'audit.html']) expect(readFileSync(join(PUBLISHED_AUDIT_DIR, f), 'utf8').length).to.be.greaterThan(1000);
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    const top = readme.split('\n').slice(0, 30).join('\n');
    expect(top).to.include('docs/audit/audit.md');
    expect(readFileSync(join(PUBLISHED_AUDIT_DIR, 'audit.md'), 'utf8')).to.match(/## What changes when you switch/);
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

  it('does not compare reports of different kernels, and says so', () => {
    const run = copy();
    for (const p of Object.values(run.profiles)) p.kernel = '7.2.13';
    const r = comparePublished(copy(), run);
    expect(r.compared).to.equal(false);
    expect(r.note).to.match(/published report is of .*6\.12.*this run of .*7\.2\.13/);
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
      expect(stale.lines.at(-1)).to.match(/FAILED: docs\/audit\/ differs from this run in 1 place.*audit --raw OUT\/vm --publish/);
      const missing = checkPublished(join(dir, 'run.json'), join(dir, 'nowhere'));
      expect(missing.failures).to.equal(1);
      expect(missing.lines[0]).to.match(/does not exist/);
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
