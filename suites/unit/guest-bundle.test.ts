// The guest's one-file bundle (lib/vm/guest-bundle.ts): built on the host and run by plain Node (no
// tsx), it must define exactly the tests the source files define, for every profile.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
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

  it('is one file that defines, per profile, the tests of the source files it names', async () => {
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
});
