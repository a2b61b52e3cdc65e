// The command line as a user meets it: help for every command, --version,
// strict parsing with exit code 2, exit code 3 with a one-line cause for what
// the machine lacks, test listing and selection by KTAP name, doctor. Each
// case runs the real bin/ in a child process; none boots a guest.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { vmExitCode } from '../../lib/cli/exit-codes.ts';
import type { ProfileOutcome } from '../../lib/vm/run-vm.ts';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin/iommufd-conformance.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('command line', function () {
  this.timeout(120_000);
  const COMMANDS = ['vm', 'run', 'audit', 'parity', 'kselftest', 'test', 'doctor'];

  it('--help lists every command and the exit codes; --version prints the package version', () => {
    const h = cli('--help');
    expect(h.code).to.equal(0);
    for (const c of COMMANDS) expect(h.stdout).to.match(new RegExp(`^  ${c} `, 'm'));
    expect(h.stdout).to.match(/exit codes:[\s\S]*  3  environment/);
    const v = cli('--version');
    expect(v.code).to.equal(0);
    expect(v.stdout.trim()).to.equal(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });

  it('every command has --help (exit 0) naming its options', () => {
    for (const c of COMMANDS) {
      const r = cli(c, '--help');
      expect(r.code, c).to.equal(0);
      expect(r.stdout, c).to.match(new RegExp(`^usage: iommufd-conformance ${c} `));
    }
    expect(cli('vm', '--help').stdout).to.match(/--kernel-src DIR[\s\S]*--test NAME/);
    for (const c of ['test', 'audit']) expect(cli(c, '--help').stdout, c).to.match(/--kernel BZIMAGE[\s\S]*--kernel-src DIR[\s\S]*--flavour/);
  });

  it('rejects stray words, unknown options, missing values, bad values and unknown commands with exit 2 and one line', () => {
    for (const args of [['test', 'extra', 'junk'], ['vm', '--nope'], ['vm', '--out'], ['vm', '--flavour', 'fancy'], ['vm', '--profile', 'kvm'], ['frobnicate'], ['audit', '--accel', 'hvf'], ['run', '--grep', '('], ['kselftest', '--profile', 'kvm'], ['kselftest', 'extra']]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).to.have.length(1);
      expect(r.stderr, args.join(' ')).not.to.match(/\n\s+at /);
    }
  });

  it('a missing kernel image is exit 3 with the cause in one line, no stack trace', () => {
    const r = cli('vm', '--profile', 'mock', '--kernel', '/nonexistent/bzImage', '--out', mkdtempSync(join(tmpdir(), 'cli-')));
    expect(r.code).to.equal(3);
    expect(r.stderr).to.match(/iommufd-conformance: .*(bzImage|qemu)/);
    expect(r.stderr).not.to.match(/\n\s+at /);
  });

  it('--list prints the KTAP names a profile would run; --test selects exactly those; an unknown name is exit 2', () => {
    const all = cli('vm', '--list', '--profile', 'mock');
    expect(all.code).to.equal(0);
    const names = all.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(names).to.include('iommufd_ioas.mock_domain.area');
    expect(all.stdout).to.match(/^# profile mock: \d+ test\(s\)$/m);
    const two = cli('vm', '--list', '--profile', 'all', '--test', 'iommufd_ioas.mock_domain.area', '--test', 'iommufd.simple_close');
    expect(two.code).to.equal(0);
    expect(two.stdout).to.equal('# profile mock: 2 test(s)\niommufd.simple_close\niommufd_ioas.mock_domain.area\n# profile viommu: 0 test(s)\n');
    const unknown = cli('vm', '--list', '--test', 'no.such.test');
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/no test named no\.such\.test/);
  });

  it('--list gives each profile all of its tests, whatever the order of the profiles: they share suites/vm/common', () => {
    const counts = (out: string) => Object.fromEntries([...out.matchAll(/^# profile (\S+): (\d+) test\(s\)$/gm)].map((m) => [m[1], Number(m[2])]));
    const alone = { mock: counts(cli('vm', '--list', '--profile', 'mock').stdout).mock, viommu: counts(cli('vm', '--list', '--profile', 'viommu').stdout).viommu };
    expect(alone.mock).to.be.above(0);
    expect(alone.viommu).to.be.above(0);
    expect(counts(cli('vm', '--list', '--profile', 'mock,viommu').stdout)).to.deep.equal(alone);
    expect(counts(cli('vm', '--list', '--profile', 'viommu,mock').stdout)).to.deep.equal(alone);
    // Two profiles with the same suites, and a --grep that only the shared files' tests match.
    const shared = cli('vm', '--list', '--profile', 'amd,viommu', '--grep', '^findings KF-0006 ');
    expect(counts(shared.stdout)).to.deep.equal({ amd: 1, viommu: 1 });
  });

  it('doctor reports every check at once, each gap with the command that fixes it', () => {
    const r = cli('doctor');
    expect([0, 3]).to.include(r.code);
    for (const what of ['Node.js', 'system-call backend', 'QEMU', 'KVM', 'kernel source', 'kernel build tools', 'kernel headers tools', 'Chromium']) {
      expect(r.stdout).to.match(new RegExp(`^(ok     |MISSING|note   ) ${what}`, 'm'));
    }
    const missing = r.stdout.split('\n').filter((l) => l.startsWith('MISSING')).length;
    expect(r.code).to.equal(missing > 0 ? 3 : 0);
    if (missing > 0) expect(r.stdout).to.match(/fix: (sudo )?apt-get install/);
  });
});

describe('exit codes of a VM run', () => {
  const outcome = (over: { ok?: boolean; exitCode?: number | null; timedOut?: boolean }) =>
    ({ profile: 'mock', ok: over.ok ?? true, reasons: [], result: { exitCode: over.exitCode === undefined ? 0 : over.exitCode, timedOut: over.timedOut ?? false } }) as unknown as ProfileOutcome;
  let withResults = '';
  const without = '/nonexistent';
  before(() => {
    withResults = mkdtempSync(join(tmpdir(), 'exit-'));
    writeFileSync(join(withResults, 'results.json'), '{}');
  });

  it('0 when every profile passed, 1 when one failed its tests, 3 when a guest crashed, timed out or wrote nothing (3 wins)', () => {
    expect(vmExitCode([{ outcome: outcome({}), resultsDir: withResults }])).to.equal(0);
    expect(vmExitCode([{ outcome: outcome({ ok: false, exitCode: 1 }), resultsDir: withResults }])).to.equal(1);
    expect(vmExitCode([{ outcome: outcome({ ok: false, exitCode: null }), resultsDir: withResults }])).to.equal(3);
    expect(vmExitCode([{ outcome: outcome({ ok: false, exitCode: null, timedOut: true }), resultsDir: withResults }])).to.equal(3);
    expect(vmExitCode([{ outcome: outcome({ ok: false, exitCode: 1 }), resultsDir: without }])).to.equal(3);
    expect(vmExitCode([
      { outcome: outcome({ ok: false, exitCode: 1 }), resultsDir: withResults },
      { outcome: outcome({ ok: false, exitCode: null }), resultsDir: withResults },
    ])).to.equal(3);
    // --exec writes no results.json: only a crash or a timeout is the infrastructure's.
    expect(vmExitCode([{ outcome: outcome({ ok: false, exitCode: 2 }), resultsDir: without }], true)).to.equal(1);
  });
});
