// The guest's one-script bundle (lib/vm/guest-bundle.ts): built on the host and run by plain Node (no
// tsx), it must define exactly the tests the source files define, for every profile.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';
import { bundleGuest, guestBundleDir } from '../../lib/vm/guest-bundle.ts';
import { PROFILES } from '../../lib/vm/profiles.ts';

/** `run --profile P --list` in a process of its own (a module's tests register once per process). */
function listed(program: string, profile: string, extra: string[] = []): string[] {
  const r = spawnSync(process.execPath, [program, 'run', '--profile', profile, ...extra, '--list'], { encoding: 'utf8' });
  expect(r.status, `${program} run --profile ${profile} --list: ${r.stderr}`).to.equal(0);
  return r.stdout.trim().split('\n');
}

describe('guest bundle', function () {
  this.timeout(180000);
  const out = mkdtempSync(join(tmpdir(), 'guest-bundle-'));
  after(() => {
    rmSync(guestBundleDir(out), { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  it('is one script (with its loader and code cache) that defines, per profile, the tests of the source files it names', async () => {
    const manifest = await bundleGuest(out);
    expect(readdirSync(guestBundleDir(out)).sort()).to.deep.equal(['bundle.js', 'bundle.js.cache', 'main.cjs', 'manifest.json']);
    for (const profile of PROFILES) {
      const files = manifest.suites[profile];
      expect(files.length, profile).to.be.greaterThan(0);
      expect(files.filter((f) => !f.startsWith(join(PACKAGE_ROOT, 'suites/')) || !f.endsWith('.test.ts')), `${profile}: source paths`).to.deep.equal([]);
      const bundled = listed(manifest.main, profile, ['--manifest', manifest.path]);
      expect(bundled.length, profile).to.be.greaterThan(100);
      expect(bundled, profile).to.deep.equal(listed(join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), profile));
    }
  });

  it('runs from the V8 code cache made here: the same Node accepts it', async () => {
    const manifest = await bundleGuest(out);
    const r = spawnSync(process.execPath, [manifest.main, 'run', '--profile', 'mock', '--manifest', manifest.path, '--list'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.not.match(/rejected the code cache/);
    // A cache made under other V8 flags is refused, and said so (the run goes on, compiling).
    const other = spawnSync(process.execPath, ['--max-semi-space-size=7', manifest.main, 'run', '--profile', 'mock', '--manifest', manifest.path, '--list'], { encoding: 'utf8' });
    expect(other.status, other.stderr).to.equal(0);
    expect(other.stderr).to.match(/rejected the code cache/);
    expect(other.stdout).to.equal(r.stdout);
  });

  /** Starts the bundle as the guest's init starts an early job: fd 3 a pipe it waits on. */
  function gated(main: string, args: string[]) {
    const child = spawn(process.execPath, [main, ...args], { env: { ...process.env, IOMMUFD_CONFORMANCE_START_FD: '3' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    return { child, go: child.stdio[3] as NodeJS.WritableStream, out: () => stdout, err: () => stderr, exited };
  }

  it('with IOMMUFD_CONFORMANCE_START_FD, runs the CLI only after one byte on that fd, and not at all when it closes first', async () => {
    const manifest = await bundleGuest(out);
    const args = ['run', '--profile', 'mock', '--manifest', manifest.path, '--list'];
    const waiting = gated(manifest.main, args);
    await new Promise((r) => setTimeout(r, 1500));
    expect(waiting.out(), 'output before the go').to.equal('');
    waiting.go.end('g');
    expect(await waiting.exited, waiting.err()).to.equal(0);
    expect(waiting.out().trim().split('\n').length).to.be.greaterThan(100);
    const refused = gated(manifest.main, args);
    refused.go.end();
    expect(await refused.exited).to.equal(1);
    expect(refused.out()).to.equal('');
    expect(refused.err()).to.match(/closed fd 3 without starting the job/);
  });
});
