// The process's fd table as lib/kernel/fd-table.ts lists it around a call
// that makes an fd without reporting it (KF-0005): exactly the fds the call
// opened, never the listing's own directory fd (which is closed again by the
// time a second listing is compared with the first).
import { closeSync, openSync } from 'node:fs';
import { expect } from 'chai';
import { fdsOpenedSince, isDmabufFd, openFds } from '../../lib/kernel/fd-table.ts';

describe('fd table', () => {
  it('lists nothing new between two listings, and exactly the fd an open made', () => {
    const before = openFds();
    expect(fdsOpenedSince(before), 'two listings in a row').to.deep.equal([]);
    const fd = openSync('/dev/null', 'r');
    try {
      expect(fdsOpenedSince(before)).to.deep.equal([fd]);
      expect(isDmabufFd(fd), '/dev/null is no dma-buf').to.equal(false);
    } finally {
      closeSync(fd);
    }
    expect(fdsOpenedSince(before), 'after the close').to.deep.equal([]);
    expect(isDmabufFd(fd), 'a closed fd').to.equal(false);
  });
});
