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

describe('project reporter: failing hooks and long failures in KTAP', () => {
  const runFixture = (extra: string[]) => {
    const out = mkdtempSync(join(tmpdir(), 'reporter-hooks-'));
    const r = spawnSync(
      process.execPath,
      [join(root, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--node-option', 'import=tsx', ...extra,
        '--reporter', join(root, 'lib/report/reporter.cjs'), '--reporter-option', `out=${out}`,
        join(root, 'suites/unit/fixtures/hooks.fixture.ts')],
      { cwd: root, encoding: 'utf8' },
    );
    return { stdout: r.stdout, ktap: readFileSync(join(out, 'results.ktap'), 'utf8').split('\n'), json: JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) };
  };
  const statusOf = (ktap: string[], name: string) => ktap.find((l) => new RegExp(`^(ok|not ok) \\d+ ${name.replace(/\./g, '\\.')}( |$)`).test(l))?.split(' ').slice(0, 2).join(' ').replace(/ \d+$/, '').replace(/^(not ok|ok).*/, '$1');
  const EXPECTED: [string, string][] = [
    ['each_fix.var.a', 'ok'], ['each_fix.var.b', 'not ok'], ['each_fix.var.c', 'not ok'],
    ['all_fix.var.x', 'not ok'], ['all_fix.var.nested.y', 'not ok'],
    ['teardown_fix.var.p', 'not ok'], ['teardown_fix.var.q', 'not ok'],
    ['late_fail.var.warned', 'not ok'], ['late_fail.var.clean', 'ok'],
    ['divergence.var.report', 'not ok'], ['after_all.passes', 'ok'],
  ];

  for (const [label, flags] of [['mocha alone', []], ['with --fail-hook-affected-tests (as `run` sets it)', ['--fail-hook-affected-tests']]] as const) {
    it(`${label}: every test under its own name, the plan counting tests, hooks not named as tests`, function () {
      this.timeout(60000);
      const { ktap, stdout, json } = runFixture([...flags]);
      expect(ktap[1]).to.equal(`1..${EXPECTED.length}`);
      for (const [name, status] of EXPECTED) expect(statusOf(ktap, name), name).to.equal(status);
      expect(ktap.filter((l) => /^(ok|not ok) /.test(l))).to.have.length(EXPECTED.length);
      expect(ktap.some((l) => /hook/.test(l) && /^(ok|not ok) /.test(l)), 'no hook as a test').to.equal(false);
      expect(ktap).to.include('# Totals: pass:3 fail:8 xfail:0 xpass:0 skip:0 error:0');
      expect(stdout.trimEnd().split('\n').pop()).to.equal('summary: 3 passed, 8 failed, 0 skipped');
      // The test failed after it passed is counted once, as failed.
      expect(json.stats.passes).to.be.at.most(3 + 1);
      expect(ktap).to.include('# each_fix.var.b: before each hook failed: set-up of b failed');
      expect(ktap).to.include('# all_fix.var.nested.y: not run: before all hook failed: fixture set-up failed');
      expect(ktap).to.include('# each_fix.var.c: not run: before each hook failed: set-up of b failed');
      expect(ktap).to.include('# teardown_fix.var.p: after each hook failed: teardown of p failed');
    });
  }

  it('puts a multi-line failure message whole into "# " diagnostic lines before the result', function () {
    this.timeout(60000);
    const { ktap } = runFixture([]);
    const at = ktap.findIndex((l) => /^not ok \d+ divergence\.var\.report$/.test(l));
    expect(ktap.slice(at - 3, at)).to.deep.equal([
      '# divergence.var.report: lockstep divergence at IOMMU_IOAS_MAP',
      '#   errno: kernel 0, model EINVAL',
      '#   out.iova: kernel 0x1000, model -',
    ]);
    const warned = ktap.findIndex((l) => /^not ok \d+ late_fail\.var\.warned$/.test(l));
    expect(ktap.slice(warned - 2, warned)).to.deep.equal(['# late_fail.var.warned: WARNING: CPU: 0 PID: 1 at somewhere', '# second line of the report']);
  });
});

describe('project reporter: parts of a test not checked', () => {
  it('names each not-checked part under the passing test in the KTAP file', function () {
    this.timeout(60000);
    const out = mkdtempSync(join(tmpdir(), 'reporter-not-checked-'));
    spawnSync(
      process.execPath,
      [join(root, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--node-option', 'import=tsx',
        '--reporter', join(root, 'lib/report/reporter.cjs'), '--reporter-option', `out=${out}`,
        join(root, 'suites/unit/fixtures/not-checked.fixture.ts')],
      { cwd: root, encoding: 'utf8' },
    );
    const ktap = readFileSync(join(out, 'results.ktap'), 'utf8').split('\n');
    const at = ktap.indexOf('ok 1 partial_fix.var.ran_most');
    expect(at).to.be.greaterThan(0);
    expect(ktap[at - 1]).to.equal('# partial_fix.var.ran_most: not checked: out_max_pasid_log2 (kernel lacks MOCK_FLAGS_DEVICE_PASID)');
  });
});

describe('project reporter: a failure whose error carries bigints', () => {
  it('still writes results.json, the KTAP file and a non-zero exit', function () {
    this.timeout(60000);
    const out = mkdtempSync(join(tmpdir(), 'reporter-bigint-'));
    const r = spawnSync(
      process.execPath,
      [join(root, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--node-option', 'import=tsx',
        '--reporter', join(root, 'lib/report/reporter.cjs'), '--reporter-option', `out=${out}`,
        join(root, 'suites/unit/fixtures/bigint-error.fixture.ts')],
      { cwd: root, encoding: 'utf8' },
    );
    expect(r.status).to.equal(1);
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.stats).to.include({ passes: 1, failures: 1 });
    expect(json.failures[0].err.diffs[0]).to.deep.equal({ field: 'iova', kernel: '4096', model: '8192' });
    expect(readFileSync(join(out, 'results.ktap'), 'utf8')).to.include('not ok 1 bigint_fix.var.fails');
  });
});
