// Every addon entry point rejects wrong arguments with a TypeError or
// RangeError that names the function and the argument, and Node survives.
import { expect } from 'chai';
import { sys, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, O_RDWR } from '../../lib/sys/index.ts';
import type { Mapping, Sys } from '../../lib/sys/index.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';

type ErrorClass = typeof TypeError | typeof RangeError;

function expectThrow(call: () => unknown, cls: ErrorClass, message: RegExp): void {
  expect(call).to.throw(cls, message);
}

describe('native addon: argument validation', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  let s: Sys;
  let nullFd: number;
  const anyS = () => s as unknown as Record<string, (...args: unknown[]) => unknown>;

  before(() => {
    s = sys();
    nullFd = s.open('/dev/null', O_RDWR);
    expect(nullFd).to.be.at.least(0);
  });
  after(() => { if (s) s.close(nullFd); });

  function anonMapping(length = 2 * PAGE_SIZE): Mapping {
    const m = s.mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (typeof m === 'number') throw new Error(`mmap failed: ${m}`);
    return m;
  }

  describe('ioctl', () => {
    it('rejects a string fd', () => expectThrow(() => anyS().ioctl!('3', 0, null), TypeError, /^ioctl: fd must be an integer \(got string\)$/));
    it('rejects a negative fd', () => expectThrow(() => s.ioctl(-1, 0, null), RangeError, /^ioctl: fd must be between 0 and 2147483647 \(got -1\)$/));
    it('rejects NaN, Infinity and fractions as fd', () => {
      for (const fd of [NaN, Infinity, 1.5]) expectThrow(() => s.ioctl(fd, 0, null), TypeError, /^ioctl: fd must be an integer/);
    });
    it('rejects an fd above INT32_MAX', () => expectThrow(() => s.ioctl(2 ** 31, 0, null), RangeError, /^ioctl: fd /));
    it('rejects a missing request and a request outside u32', () => {
      expectThrow(() => anyS().ioctl!(nullFd), TypeError, /^ioctl: request must be an integer or a bigint \(got undefined\)$/);
      expectThrow(() => s.ioctl(nullFd, 2 ** 32, null), RangeError, /^ioctl: request /);
      expectThrow(() => s.ioctl(nullFd, -1, null), RangeError, /^ioctl: request /);
      expectThrow(() => s.ioctl(nullFd, 1n << 32n as unknown as number, null), RangeError, /^ioctl: request /);
    });
    it('rejects a missing, string, negative or oversized arg', () => {
      expectThrow(() => anyS().ioctl!(nullFd, 0x3b84), TypeError, /^ioctl: arg must be .* \(got undefined\)$/);
      expectThrow(() => anyS().ioctl!(nullFd, 0x3b84, 'x'), TypeError, /^ioctl: arg /);
      expectThrow(() => s.ioctl(nullFd, 0x3b84, -1), RangeError, /^ioctl: arg /);
      expectThrow(() => s.ioctl(nullFd, 0x3b84, -1n), RangeError, /^ioctl: arg /);
      expectThrow(() => s.ioctl(nullFd, 0x3b84, 1n << 64n), RangeError, /^ioctl: arg /);
      expectThrow(() => s.ioctl(nullFd, 0x3b84, 2 ** 53), RangeError, /^ioctl: arg /);
      expectThrow(() => s.ioctl(nullFd, 0x3b84, NaN), TypeError, /^ioctl: arg must be an integer \(got NaN\)$/);
      expectThrow(() => anyS().ioctl!(nullFd, 0x3b84, {}), TypeError, /^ioctl: arg must be an ArrayBufferView/);
      expectThrow(() => anyS().ioctl!(nullFd, 0x3b84, new ArrayBuffer(8)), TypeError, /^ioctl: arg /);
    });
    it('still works after all that', () => expect(s.ioctl(nullFd, 0x3b84, null)).to.equal(-25));
  });

  describe('open, close, memfdCreate, ftruncate, addressOf', () => {
    it('open rejects a non-string path, a path with NUL, bad flags and mode', () => {
      expectThrow(() => anyS().open!(42, O_RDWR), TypeError, /^open: path must be a string \(got 42\)$/);
      expectThrow(() => s.open('/dev/null\0x', O_RDWR), TypeError, /^open: path must be a string without NUL/);
      expectThrow(() => anyS().open!('/dev/null'), TypeError, /^open: flags must be an integer \(got undefined\)$/);
      expectThrow(() => s.open('/dev/null', 2 ** 32), RangeError, /^open: flags /);
      expectThrow(() => s.open('/dev/null', O_RDWR, -1), RangeError, /^open: mode /);
      expectThrow(() => s.open('/dev/null', O_RDWR, 0.5), TypeError, /^open: mode /);
    });
    it('close rejects a string, negative or missing fd', () => {
      expectThrow(() => anyS().close!('1'), TypeError, /^close: fd must be an integer/);
      expectThrow(() => s.close(-1), RangeError, /^close: fd /);
      expectThrow(() => anyS().close!(), TypeError, /^close: fd must be an integer \(got undefined\)$/);
    });
    it('memfdCreate and ftruncate reject bad arguments', () => {
      expectThrow(() => anyS().memfdCreate!(null, 0), TypeError, /^memfdCreate: name must be a string/);
      expectThrow(() => anyS().memfdCreate!('x'), TypeError, /^memfdCreate: flags /);
      expectThrow(() => s.ftruncate(nullFd, -1), RangeError, /^ftruncate: length /);
      expectThrow(() => s.ftruncate(nullFd, 1e300), RangeError, /^ftruncate: length .*\(got 1e\+300\)$/);
      expectThrow(() => anyS().ftruncate!('x', 0), TypeError, /^ftruncate: fd /);
    });
    it('addressOf rejects anything but an ArrayBufferView', () => {
      for (const v of [undefined, null, 1, 1n, 'x', {}, new ArrayBuffer(4)]) {
        expectThrow(() => anyS().addressOf!(v), TypeError, /^addressOf: view must be an ArrayBufferView/);
      }
    });
  });

  describe('read, write, poll, peek (event queue fds and iommufd regions)', () => {
    it('read rejects a bad fd and a buffer that is not a view', () => {
      expectThrow(() => anyS().read!('3', new Uint8Array(4)), TypeError, /^read: fd must be an integer \(got string\)$/);
      expectThrow(() => s.read(-1, new Uint8Array(4)), RangeError, /^read: fd must be between 0 and 2147483647 \(got -1\)$/);
      expectThrow(() => anyS().read!(nullFd, 16), TypeError, /^read: buffer must be an ArrayBufferView/);
      expectThrow(() => anyS().read!(nullFd), TypeError, /^read: buffer must be an ArrayBufferView/);
    });
    it('write rejects a bad fd and a buffer that is not a view', () => {
      expectThrow(() => anyS().write!('3', new Uint8Array(4)), TypeError, /^write: fd must be an integer \(got string\)$/);
      expectThrow(() => s.write(-1, new Uint8Array(4)), RangeError, /^write: fd must be between 0 and 2147483647 \(got -1\)$/);
      expectThrow(() => anyS().write!(nullFd, 16), TypeError, /^write: buffer must be an ArrayBufferView/);
    });
    it('poll rejects a bad fd, events outside 0..0x7fff and a timeout below -1', () => {
      expectThrow(() => anyS().poll!(null, 1, 0), TypeError, /^poll: fd must be an integer/);
      expectThrow(() => s.poll(nullFd, -1, 0), RangeError, /^poll: events must be between 0 and 32767/);
      expectThrow(() => s.poll(nullFd, 0x8000, 0), RangeError, /^poll: events /);
      expectThrow(() => s.poll(nullFd, 1, -2), RangeError, /^poll: timeoutMs must be between -1 and /);
      expectThrow(() => anyS().poll!(nullFd, 1), TypeError, /^poll: timeoutMs must be an integer/);
    });
    it('peek rejects a non-mapping, a range outside the mapping, more than a page and an unmapped page', () => {
      const m = anonMapping();
      expectThrow(() => anyS().peek!({ address: m.address, length: m.length, buffer: new ArrayBuffer(8) }, 0, 4), TypeError, /^peek: mapping must be a Mapping returned by mmap/);
      expectThrow(() => s.peek(m, 2 * PAGE_SIZE - 2, 4), RangeError, /^peek: offset and length must lie inside the mapping/);
      expectThrow(() => s.peek(m, 0, PAGE_SIZE + 1), RangeError, /^peek: length must be at most the page size/);
      expectThrow(() => s.peek(m, -1, 4), RangeError, /^peek: offset /);
      expect(s.munmap(m, PAGE_SIZE, PAGE_SIZE)).to.equal(0);
      expectThrow(() => s.peek(m, PAGE_SIZE, 4), RangeError, /^peek: mapping is already unmapped/);
      expect(s.munmap(m, 0, PAGE_SIZE)).to.equal(0);
    });
  });

  describe('mmap and friends', () => {
    it('mmap rejects length -1, NaN, a huge length and a bad fd or offset', () => {
      expectThrow(() => s.mmap(-1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), RangeError, /^mmap: length /);
      expectThrow(() => s.mmap(NaN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), TypeError, /^mmap: length must be an integer \(got NaN\)$/);
      expectThrow(() => s.mmap(2 ** 60, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), RangeError, /^mmap: length /);
      expectThrow(() => anyS().mmap!(PAGE_SIZE, 'r', MAP_PRIVATE | MAP_ANONYMOUS), TypeError, /^mmap: prot /);
      expectThrow(() => anyS().mmap!(PAGE_SIZE, PROT_READ), TypeError, /^mmap: flags /);
      expectThrow(() => s.mmap(PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -2), RangeError, /^mmap: fd /);
      expectThrow(() => s.mmap(PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, -4096), RangeError, /^mmap: offset /);
    });
    it('munmap twice is a RangeError, not a crash', () => {
      const m = anonMapping();
      expect(s.munmap(m)).to.equal(0);
      expectThrow(() => s.munmap(m), RangeError, /^munmap: mapping is already unmapped/);
      expectThrow(() => s.munmap(m, PAGE_SIZE, PAGE_SIZE), RangeError, /already unmapped/);
      expectThrow(() => s.mprotect(m, 0, PAGE_SIZE, PROT_READ), RangeError, /^mprotect: mapping is already unmapped/);
      expectThrow(() => s.madvise(m, 0, PAGE_SIZE, 4), RangeError, /^madvise: mapping is already unmapped/);
    });
    it('munmap rejects an offset outside the mapping, unaligned ranges and a range past its end', () => {
      const m = anonMapping();
      try {
        expectThrow(() => s.munmap(m, 4 * PAGE_SIZE), RangeError, /^munmap: offset and length must lie inside the mapping/);
        expectThrow(() => s.munmap(m, 0, 3 * PAGE_SIZE), RangeError, /^munmap: offset and length must lie inside/);
        expectThrow(() => s.munmap(m, 1), RangeError, /^munmap: offset must be a multiple of the page size/);
        expectThrow(() => s.munmap(m, 0, 100), RangeError, /^munmap: length must end on a page boundary/);
        expectThrow(() => s.munmap(m, 0, -1), RangeError, /^munmap: length /);
        expectThrow(() => s.mprotect(m, PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ), RangeError, /^mprotect: offset and length/);
        expectThrow(() => anyS().madvise!(m, 0, PAGE_SIZE), TypeError, /^madvise: advice must be an integer/);
        expect(m.buffer.byteLength, 'a rejected munmap leaves the mapping attached').to.equal(m.length);
      } finally {
        expect(s.munmap(m)).to.equal(0);
      }
    });
    it('munmap refuses objects that mmap did not return', () => {
      const m = anonMapping();
      try {
        expectThrow(() => anyS().munmap!(undefined), TypeError, /^munmap: mapping must be an object \(got undefined\)$/);
        expectThrow(() => anyS().munmap!(42), TypeError, /^munmap: mapping must be an object/);
        const forged = { address: m.address, length: m.length, buffer: new ArrayBuffer(m.length) };
        expectThrow(() => s.munmap(forged), TypeError, /^munmap: mapping must be a Mapping returned by mmap/);
        const moved = { address: m.address + 4096n, length: m.length, buffer: m.buffer };
        expectThrow(() => s.munmap(moved), RangeError, /^munmap: mapping address and length do not match/);
        const grown = { address: m.address, length: m.length * 2, buffer: m.buffer };
        expectThrow(() => s.munmap(grown), RangeError, /^munmap: mapping address and length do not match/);
      } finally {
        expect(s.munmap(m)).to.equal(0);
      }
    });
  });

  describe('process calls', () => {
    it('getrlimit and setrlimit reject a bad resource and a non-object limit', () => {
      expectThrow(() => s.getrlimit(-1), RangeError, /^getrlimit: resource /);
      expectThrow(() => anyS().getrlimit!('memlock'), TypeError, /^getrlimit: resource must be an integer/);
      expectThrow(() => anyS().setrlimit!(8, 5), TypeError, /^setrlimit: limit must be an object \(got 5\)$/);
      expectThrow(() => anyS().setrlimit!(8, null), TypeError, /^setrlimit: limit must be an object \(got null\)$/);
      expectThrow(() => anyS().setrlimit!(8, { cur: 'x', max: 0n }), TypeError, /^setrlimit: limit.cur must be a bigint/);
      expectThrow(() => anyS().setrlimit!(8, { cur: 0n, max: -1n }), RangeError, /^setrlimit: limit.max /);
      expectThrow(() => anyS().setrlimit!(8, { cur: 0n }), TypeError, /^setrlimit: limit.max .*\(got undefined\)$/);
    });
    it('capset rejects a non-object and out-of-range sets', () => {
      expectThrow(() => anyS().capset!(), TypeError, /^capset: caps must be an object/);
      expectThrow(() => anyS().capset!({ effective: 1n << 64n, permitted: 0n, inheritable: 0n }), RangeError, /^capset: caps.effective /);
      expectThrow(() => anyS().capset!({ effective: 0n, permitted: 'all', inheritable: 0n }), TypeError, /^capset: caps.permitted /);
    });
    it('forkIoctl rejects bad arguments before forking', () => {
      expectThrow(() => anyS().forkIoctl!('x', 0, new Uint8Array(4), false), TypeError, /^forkIoctl: fd /);
      expectThrow(() => anyS().forkIoctl!(nullFd, 0, null, false), TypeError, /^forkIoctl: arg must be an ArrayBufferView/);
      expectThrow(() => anyS().forkIoctl!(nullFd, 0, new Uint8Array(4)), TypeError, /^forkIoctl: keepAlive must be a boolean \(got undefined\)$/);
    });
    it('forkRelease rejects a pid it did not keep alive', () => {
      expectThrow(() => s.forkRelease(process.pid), RangeError, /^forkRelease: pid is not a child kept alive by forkIoctl/);
      expectThrow(() => s.forkRelease(0), RangeError, /^forkRelease: pid /);
      expectThrow(() => anyS().forkRelease!('1'), TypeError, /^forkRelease: pid /);
    });
    it('ioctlFailNth rejects bad arguments before arming', () => {
      expectThrow(() => s.ioctlFailNth(nullFd, 0x3b84, null, 0), RangeError, /^ioctlFailNth: nth /);
      expectThrow(() => anyS().ioctlFailNth!(nullFd, 0x3b84, null), TypeError, /^ioctlFailNth: nth must be an integer/);
      expectThrow(() => anyS().ioctlFailNth!(nullFd, 0x3b84, 'x', 1), TypeError, /^ioctlFailNth: arg /);
      expectThrow(() => anyS().ioctlFailNth!(-5, 0x3b84, null, 1), RangeError, /^ioctlFailNth: fd /);
    });
  });
});

// The benchmark's floors (bench/ioctl.ts) are exported by the addon too, so
// they obey the same rule: whatever they are handed, Node survives. They
// answer -EINVAL instead of throwing (a throw would cost what they measure).
describe('native addon: the benchmark floors', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('napiFloorIoctl refuses what could let the kernel write past the buffer, and issues the rest', async () => {
    const { addonNapiFloors } = await import('../../lib/sys/addon.ts');
    const { ioctl, nothing } = addonNapiFloors();
    const s = sys();
    const fd = s.open('/dev/null', O_RDWR);
    try {
      const EINVAL = -22;
      const ENOTTY = -25;
      const call = ioctl as unknown as (...args: unknown[]) => number;
      expect(call('x', 0x3b84, new Uint8Array(8))).to.equal(EINVAL);
      expect(call(fd, 0x3b84, null)).to.equal(EINVAL);
      expect(call(fd, 0x3b84, new Uint16Array(4))).to.equal(EINVAL);
      expect(call(fd, 0x3b84, new Uint8Array(2))).to.equal(EINVAL);
      // _IOR('x', 1, 64 bytes) against an 8-byte buffer.
      expect(call(fd, (2 << 30) | (64 << 16) | 0x7801, new Uint8Array(8))).to.equal(EINVAL);
      // A leading size field larger than the buffer (iommufd's and VFIO's convention).
      const lying = new Uint8Array(8);
      new DataView(lying.buffer).setUint32(0, 4096, true);
      expect(call(fd, 0x3b84, lying)).to.equal(EINVAL);
      expect(call(fd, 0x3b84, new Uint8Array(8))).to.equal(ENOTTY);
      expect((nothing as unknown as (...args: unknown[]) => number)()).to.equal(0);
    } finally {
      s.close(fd);
    }
  });
});
