// The guest is a sandbox: the host's files are visible read-only, and only
// the results folder can be written. Runs in the test VM only.
import { expect } from 'chai';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../../lib/cli/paths.ts';
import { inTestVm } from '../../support/kernel.ts';
import { skipBecause } from '../../support/skip.ts';

function writeErrno(path: string): string | null {
  try {
    writeFileSync(path, 'written by the test guest\n');
    rmSync(path);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unknown';
  }
}

describe('guest.isolation', () => {
  before(function () {
    if (!inTestVm()) skipBecause(this, 'not in a test VM (IOMMUFD_CONFORMANCE_IN_VM unset)');
  });

  it('cannot write host files outside the results folder', () => {
    expect(writeErrno(join(PACKAGE_ROOT, '.guest-write-probe'))).to.equal('EROFS');
    expect(writeErrno('/etc/iommufd-conformance-guest-probe')).to.equal('EROFS');
    expect(writeErrno('/root/.iommufd-conformance-guest-probe')).to.equal('EROFS');
  });

  it('can write its results folder', () => {
    const out = process.env.IOMMUFD_CONFORMANCE_RESULTS;
    expect(out, 'IOMMUFD_CONFORMANCE_RESULTS').to.be.a('string');
    expect(writeErrno(join(out!, '.guest-write-probe'))).to.equal(null);
  });
});
