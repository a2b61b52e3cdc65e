// Memory mappings through the addon: mmap, munmap, mprotect, madvise, memfd.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  sys, errnoName, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MAP_HUGETLB,
  MADV_DONTNEED, MFD_CLOEXEC,
} from '../../lib/sys/index.ts';
import type { Mapping, Sys } from '../../lib/sys/index.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';

/** The permissions column ("rw-p") of the /proc/self/maps line containing address. */
function mapsPermissions(address: bigint): string | undefined {
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
    if (m && BigInt(`0x${m[1]}`) <= address && address < BigInt(`0x${m[2]}`)) return m[3];
  }
  return undefined;
}

describe('native addon: memory', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  let s: Sys;
  const live: Mapping[] = [];
  before(() => { s = sys(); });
  afterEach(() => {
    for (const m of live.splice(0)) {
      try {
        s.munmap(m);
      } catch {
        // already unmapped by the test
      }
    }
  });

  function map(length: number, prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS, fd?: number): Mapping {
    const m = s.mmap(length, prot, flags, fd);
    if (typeof m === 'number') throw new Error(`mmap: ${errnoName(m)}`);
    live.push(m);
    return m;
  }

  it('maps anonymous memory that reads back what the view wrote', () => {
    const m = map(2 * PAGE_SIZE);
    expect(m.length).to.equal(2 * PAGE_SIZE);
    expect(m.buffer.byteLength).to.equal(2 * PAGE_SIZE);
    expect(m.address % BigInt(PAGE_SIZE)).to.equal(0n);
    const bytes = new Uint8Array(m.buffer);
    expect(bytes.every((b) => b === 0), 'fresh anonymous memory is zero').to.equal(true);
    bytes[0] = 0xa5;
    bytes[2 * PAGE_SIZE - 1] = 0x5a;
    const again = new Uint8Array(m.buffer);
    expect([again[0], again[2 * PAGE_SIZE - 1]]).to.deep.equal([0xa5, 0x5a]);
    expect(mapsPermissions(m.address)).to.equal('rw-p');
  });

  it('addressOf the mapping view (and a view at an offset) gives the mapped address', () => {
    const m = map(PAGE_SIZE);
    expect(s.addressOf(new Uint8Array(m.buffer))).to.equal(m.address);
    expect(s.addressOf(new DataView(m.buffer, 100))).to.equal(m.address + 100n);
    expect(s.addressOf(new Uint32Array(m.buffer, 8, 2))).to.equal(m.address + 8n);
  });

  it('addressOf a small on-heap typed array is stable across garbage collection', () => {
    const small = new Uint8Array(16);
    const before = s.addressOf(small);
    const gc = (globalThis as { gc?: () => void }).gc;
    // Churn the young generation, which moves on-heap objects.
    for (let i = 0; i < 50; i++) new Array(100_000).fill(i);
    gc?.();
    expect(s.addressOf(small)).to.equal(before);
  });

  it('mprotect to PROT_READ changes the mapping permissions', () => {
    const m = map(2 * PAGE_SIZE);
    expect(s.mprotect(m, 0, PAGE_SIZE, PROT_READ)).to.equal(0);
    expect(mapsPermissions(m.address)).to.equal('r--p');
    expect(mapsPermissions(m.address + BigInt(PAGE_SIZE))).to.equal('rw-p');
    expect(s.mprotect(m, 0, PAGE_SIZE, PROT_READ | PROT_WRITE)).to.equal(0);
    expect(mapsPermissions(m.address)).to.equal('rw-p');
  });

  it('mprotect with invalid prot bits returns -EINVAL as data', () => {
    const m = map(PAGE_SIZE);
    expect(errnoName(s.mprotect(m, 0, PAGE_SIZE, 0x7fff_0000))).to.equal('EINVAL');
  });

  it('madvise(MADV_DONTNEED) zeroes a private anonymous page', () => {
    const m = map(2 * PAGE_SIZE);
    const bytes = new Uint8Array(m.buffer);
    bytes.fill(7);
    expect(s.madvise(m, PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)).to.equal(0);
    expect(bytes[0]).to.equal(7);
    expect(bytes[PAGE_SIZE]).to.equal(0);
    expect(bytes.subarray(PAGE_SIZE).every((b) => b === 0)).to.equal(true);
  });

  it('memfd + ftruncate + MAP_SHARED: a write through one mapping is visible through another', () => {
    const fd = s.memfdCreate('iommufd-conformance-test', MFD_CLOEXEC);
    expect(fd, errnoName(fd)).to.be.at.least(0);
    try {
      expect(s.ftruncate(fd, 2 * PAGE_SIZE)).to.equal(0);
      const a = map(2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
      const b = map(2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
      expect(a.address).to.not.equal(b.address);
      new Uint8Array(a.buffer).set([1, 2, 3], PAGE_SIZE + 10);
      expect([...new Uint8Array(b.buffer, PAGE_SIZE + 10, 3)]).to.deep.equal([1, 2, 3]);
      const offset = s.mmap(PAGE_SIZE, PROT_READ, MAP_SHARED, fd, PAGE_SIZE);
      if (typeof offset === 'number') throw new Error(errnoName(offset));
      live.push(offset);
      // A PROT_READ mapping has no view (JS could write to it); read-write, it has one.
      expect(offset.buffer.byteLength).to.equal(0);
      expect(s.mprotect(offset, 0, PAGE_SIZE, PROT_READ | PROT_WRITE)).to.equal(0);
      expect([...new Uint8Array(offset.buffer, 10, 3)]).to.deep.equal([1, 2, 3]);
    } finally {
      s.close(fd);
    }
  });

  it('munmap detaches the buffer, so later JS access sees 0 bytes', () => {
    const m = map(PAGE_SIZE);
    const view = new Uint8Array(m.buffer);
    view[0] = 1;
    expect(s.munmap(m)).to.equal(0);
    expect(m.buffer.byteLength).to.equal(0);
    expect(view.length).to.equal(0);
    expect(view[0]).to.equal(undefined);
    expect(mapsPermissions(m.address)).to.equal(undefined);
  });

  it('a partial munmap detaches, and the pages left mapped can still be unmapped', () => {
    const m = map(3 * PAGE_SIZE);
    expect(s.munmap(m, PAGE_SIZE, PAGE_SIZE)).to.equal(0);
    expect(m.buffer.byteLength).to.equal(0);
    expect(mapsPermissions(m.address)).to.equal('rw-p');
    expect(mapsPermissions(m.address + BigInt(PAGE_SIZE))).to.equal(undefined);
    expect(() => s.munmap(m)).to.throw(RangeError, /already unmapped/);
    expect(s.mprotect(m, 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ)).to.equal(0);
    expect(s.munmap(m, 0, PAGE_SIZE)).to.equal(0);
    expect(s.munmap(m, 2 * PAGE_SIZE)).to.equal(0);
    expect(mapsPermissions(m.address + 2n * BigInt(PAGE_SIZE))).to.equal(undefined);
  });

  it('a length that is not a page multiple maps whole pages and unmaps by its own length', () => {
    const m = map(PAGE_SIZE + 1);
    expect(m.buffer.byteLength).to.equal(PAGE_SIZE + 1);
    expect(s.munmap(m)).to.equal(0);
    expect(mapsPermissions(m.address + BigInt(PAGE_SIZE))).to.equal(undefined);
  });

  it('kernel errors come back as negative errno values', () => {
    expect(errnoName(s.mmap(0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS) as number)).to.equal('EINVAL');
    expect(errnoName(s.mmap(PAGE_SIZE, PROT_READ, MAP_SHARED, 999_999) as number)).to.equal('EBADF');
  });

  it('MAP_HUGETLB returns either a mapping or a negative errno (data, not a throw)', () => {
    const m = s.mmap(2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    if (typeof m === 'number') {
      expect(m).to.be.below(0);
      expect(['ENOMEM', 'EINVAL']).to.include(errnoName(m));
    } else {
      live.push(m);
      expect(m.length).to.equal(2 << 20);
    }
  });
});

describe('native addon: aligned mappings and mmapOver', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  let s: Sys;
  before(() => { s = sys(); });
  const TWO_MIB = 2 * 1024 * 1024;

  it('places a mapping at the requested alignment', () => {
    const m = s.mmap(65536, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0, TWO_MIB);
    if (typeof m === 'number') throw new Error(`mmap failed: ${m}`);
    expect(m.address % BigInt(TWO_MIB)).to.equal(0n);
    expect(m.length).to.equal(65536);
    new Uint8Array(m.buffer).fill(1);
    expect(s.munmap(m)).to.equal(0);
  });

  it('refuses MAP_FIXED in mmap and a bad alignment, with RangeErrors', () => {
    expect(() => s.mmap(4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)).to.throw(RangeError, /MAP_FIXED/);
    expect(() => s.mmap(4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, 3000)).to.throw(RangeError, /align/);
  });

  it('gives a range of a mapping new pages in place, and nothing outside it', () => {
    const m = s.mmap(4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    if (typeof m === 'number') throw new Error(`mmap failed: ${m}`);
    const v = new Uint8Array(m.buffer);
    v.fill(7);
    expect(s.mmapOver(m, 4096, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)).to.equal(0);
    expect([v[0], v[4096], v[8192], v[12288]]).to.deep.equal([7, 0, 0, 7]);
    expect(() => s.mmapOver(m, 4096 * 4, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)).to.throw(RangeError);
    expect(s.munmap(m)).to.equal(0);
    expect(() => s.mmapOver(m, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)).to.throw(RangeError, /already unmapped/);
  });
});
