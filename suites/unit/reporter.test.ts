// The project reporter counts every skip under its stated reason and ends
// with the closing line CI reads; checked on a fixture run in a child mocha.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

describe('project reporter', () => {
  let stdout = '';
  let out = '';
  before(function () {
    this.timeout(60000);
    out = mkdtempSync(join(tmpdir(), 'reporter-'));
    const r = spawnSync(
      process.execPath,
      [join(root, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--node-option', 'import=tsx',
        '--reporter', join(root, 'lib/report/reporter.cjs'), '--reporter-option', `out=${out}`,
        join(root, 'suites/unit/fixtures/skip-reasons.fixture.ts')],
      { cwd: root, encoding: 'utf8' },
    );
    stdout = r.stdout;
  });

  it('counts skips by the reason given in a before() hook, a beforeEach() hook and a test', () => {
    expect(stdout).to.match(/2 × reason given in before\(\)/);
    expect(stdout).to.match(/1 × reason given in beforeEach\(\)/);
    expect(stdout).to.match(/1 × reason given in the test/);
    expect(stdout).not.to.match(/without a stated reason/);
  });

  it('ends with the closing summary line', () => {
    expect(stdout.trimEnd().split('\n').pop()).to.equal('summary: 0 passed, 0 failed, 4 skipped');
  });

  it('writes results.json, results.tap, results.xml and results.ktap', () => {
    for (const f of ['results.json', 'results.tap', 'results.xml', 'results.ktap']) expect(existsSync(join(out, f)), f).to.equal(true);
    const ktap = readFileSync(join(out, 'results.ktap'), 'utf8').split('\n');
    expect(ktap.slice(0, 2)).to.deep.equal(['KTAP version 1', '1..4']);
    expect(ktap.some((l) => /^ok \d skipBecause\.from_a_before\(\)_hook\.first_test # SKIP reason given in before\(\)$/.test(l))).to.equal(true);
    expect(ktap).to.include('# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:4 error:0');
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).stats.pending).to.equal(4);
    expect(readFileSync(join(out, 'results.tap'), 'utf8')).to.match(/^TAP version 13\n/);
    expect(readFileSync(join(out, 'results.xml'), 'utf8')).to.match(/skipped="4"/);
  });
});
