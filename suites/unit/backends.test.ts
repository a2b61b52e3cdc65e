// The addon and koffi backends give identical results for identical calls:
// the same values for kernel results and the same error class and message
// for bad arguments. Results are compared as transcripts, one per backend.
import { closeSync, openSync, readSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  coreSys, BACKEND_ENV, PAGE_SIZE, MAP_ANONYMOUS, MAP_PRIVATE, O_CLOEXEC, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE,
} from '../../lib/sys/index.ts';
import type { Mapping, SysCore } from '../../lib/sys/index.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';

const NOT_A_NULL_IOCTL = 0x3b84;
const FIONREAD = 0x541b;

type Entry = [label: string, result: unknown];

/** Runs call and records its result, or the class and message it threw. */
function record(transcript: Entry[], label: string, call: () => unknown): void {
  try {
    transcript.push([label, call()]);
  } catch (e) {
    const err = e as Error;
    transcript.push([label, { threw: err.constructor.name, message: err.message }]);
  }
}

/** Reads n bytes of this process's memory at address, through /proc/self/mem. */
function readMemory(address: bigint, n: number): number[] {
  const fd = openSync('/proc/self/mem', 'r');
  try {
    const out = Buffer.alloc(n);
    expect(readSync(fd, out, 0, n, address)).to.equal(n);
    return [...out];
  } finally {
    closeSync(fd);
  }
}

describe('backends: addon and koffi agree', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  let addon: SysCore;
  let koffi: SysCore;
  let dir: string;
  let file: string;

  before(() => {
    addon = coreSys('addon');
    koffi = coreSys('koffi');
    dir = mkdtempSync(join(tmpdir(), 'iommufd-conformance-'));
    file = join(dir, 'twelve-bytes');
    writeFileSync(file, 'hello, world');
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('coreSys picks backends by argument and by environment, and rejects unknown names', () => {
    expect(addon.backend).to.equal('addon');
    expect(koffi.backend).to.equal('koffi');
    const saved = process.env[BACKEND_ENV];
    try {
      process.env[BACKEND_ENV] = 'koffi';
      expect(coreSys().backend).to.equal('koffi');
      delete process.env[BACKEND_ENV];
      expect(coreSys().backend).to.equal('addon');
      process.env[BACKEND_ENV] = 'ctypes';
      expect(() => coreSys()).to.throw(Error, /unknown system-call backend IOMMUFD_CONFORMANCE_BACKEND="ctypes": expected one of addon, koffi/);
      expect(() => coreSys('nope')).to.throw(Error, /unknown system-call backend "nope"/);
    } finally {
      if (saved === undefined) delete process.env[BACKEND_ENV];
      else process.env[BACKEND_ENV] = saved;
    }
  });

  function fdTranscript(s: SysCore): Entry[] {
    const t: Entry[] = [];
    const fd = s.open('/dev/null', O_RDWR | O_CLOEXEC);
    t.push(['open /dev/null succeeds', fd >= 0]);
    record(t, 'open missing', () => s.open(join(dir, 'missing'), O_RDONLY));
    record(t, 'ioctl buffer', () => s.ioctl(fd, NOT_A_NULL_IOCTL, new Uint8Array(8)));
    record(t, 'ioctl dataview', () => s.ioctl(fd, NOT_A_NULL_IOCTL, new DataView(new ArrayBuffer(4))));
    record(t, 'ioctl bigint', () => s.ioctl(fd, NOT_A_NULL_IOCTL, 1n));
    record(t, 'ioctl number', () => s.ioctl(fd, NOT_A_NULL_IOCTL, 7));
    record(t, 'ioctl null', () => s.ioctl(fd, NOT_A_NULL_IOCTL, null));
    record(t, 'ioctl bad fd', () => s.ioctl(999_999, NOT_A_NULL_IOCTL, null));
    record(t, 'poll /dev/null', () => s.poll(fd, 0x1 | 0x4, 0));
    record(t, 'read /dev/null', () => s.read(fd, new Uint8Array(4)));
    record(t, 'close', () => s.close(fd));
    record(t, 'close again', () => s.close(fd));
    record(t, 'read closed fd', () => s.read(fd, new Uint8Array(4)));
    record(t, 'poll closed fd', () => s.poll(fd, 0x1, 0));

    const reg = s.open(file, O_RDONLY | O_CLOEXEC);
    const count = new Uint8Array(12);
    record(t, 'FIONREAD into a view at an offset', () => s.ioctl(reg, FIONREAD, new DataView(count.buffer, 4, 4)));
    t.push(['FIONREAD bytes', [...count]]);
    record(t, 'FIONREAD to a bad pointer', () => s.ioctl(reg, FIONREAD, 1n));
    record(t, 'FIONREAD to NULL', () => s.ioctl(reg, FIONREAD, null));
    record(t, 'close file', () => s.close(reg));
    return t;
  }

  it('open, ioctl and close give the same results', () => {
    const a = fdTranscript(addon);
    const k = fdTranscript(koffi);
    expect(k).to.deep.equal(a);
    // And the results are the expected ones, not merely equal.
    expect(Object.fromEntries(a)).to.deep.include({
      'open /dev/null succeeds': true, 'open missing': -2, 'ioctl buffer': -25, 'ioctl bigint': -25, 'ioctl null': -25,
      'ioctl bad fd': -9, 'close': 0, 'close again': -9, 'FIONREAD into a view at an offset': 0,
      'FIONREAD bytes': [0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0], 'FIONREAD to a bad pointer': -14, 'FIONREAD to NULL': -14,
    });
  });

  function memoryTranscript(s: SysCore): Entry[] {
    const t: Entry[] = [];
    const m = s.mmap(2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (typeof m === 'number') throw new Error(`mmap failed: ${m}`);
    t.push(['mapping length', [m.length, m.buffer.byteLength]]);
    const bytes = new Uint8Array(m.buffer);
    bytes.set([9, 8, 7], PAGE_SIZE);
    t.push(['read back', [...new Uint8Array(m.buffer, PAGE_SIZE, 3)]]);
    t.push(['addressOf the view is the mapping address', s.addressOf(bytes) === m.address]);
    t.push(['/proc/self/mem at the address', readMemory(m.address + BigInt(PAGE_SIZE), 3)]);
    record(t, 'munmap unaligned', () => s.munmap(m, 1));
    record(t, 'munmap outside', () => s.munmap(m, 4 * PAGE_SIZE));
    record(t, 'munmap second page', () => s.munmap(m, PAGE_SIZE));
    record(t, 'munmap second page again', () => s.munmap(m, PAGE_SIZE));
    record(t, 'munmap all', () => s.munmap(m));
    record(t, 'munmap first page', () => s.munmap(m, 0, PAGE_SIZE));
    record(t, 'munmap twice', () => s.munmap(m));
    record(t, 'mmap length 0', () => s.mmap(0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS));
    record(t, 'mmap bad fd', () => s.mmap(PAGE_SIZE, PROT_READ, MAP_PRIVATE, 999_999));
    return t;
  }

  it('mmap, view writes, addressOf and munmap give the same results', () => {
    const a = memoryTranscript(addon);
    const k = memoryTranscript(koffi);
    expect(k).to.deep.equal(a);
    expect(Object.fromEntries(a)).to.deep.include({
      'read back': [9, 8, 7], 'addressOf the view is the mapping address': true,
      '/proc/self/mem at the address': [9, 8, 7], 'munmap second page': 0, 'munmap first page': 0, 'mmap length 0': -22,
      'mmap bad fd': -9,
    });
  });

  it('addressOf a plain typed array points at its bytes on both backends', () => {
    for (const s of [addon, koffi]) {
      const view = new Uint8Array(64);
      view.set([0xde, 0xad, 0xbe, 0xef], 10);
      const sub = view.subarray(10, 14);
      expect(readMemory(s.addressOf(sub), 4), s.backend).to.deep.equal([0xde, 0xad, 0xbe, 0xef]);
      expect(s.addressOf(sub) - s.addressOf(view), s.backend).to.equal(10n);
    }
  });

  it('munmap detaches the buffer on the addon only (the documented difference)', () => {
    const lengths: Record<string, number> = {};
    for (const s of [addon, koffi]) {
      const m = s.mmap(PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS) as Mapping;
      expect(s.munmap(m)).to.equal(0);
      lengths[s.backend] = m.buffer.byteLength;
    }
    expect(lengths).to.deep.equal({ addon: 0, koffi: PAGE_SIZE });
  });

  // Bad arguments: each is tried on both backends; class and message must match.
  const badCalls: Array<[string, (s: SysCore) => unknown]> = [
    ['ioctl string fd', (s) => s.ioctl('3' as unknown as number, 0, null)],
    ['ioctl negative fd', (s) => s.ioctl(-1, 0, null)],
    ['ioctl NaN fd', (s) => s.ioctl(NaN, 0, null)],
    ['ioctl fractional fd', (s) => s.ioctl(0.5, 0, null)],
    ['ioctl huge fd', (s) => s.ioctl(1e300, 0, null)],
    ['ioctl missing request', (s) => (s.ioctl as (...a: unknown[]) => number)(0)],
    ['ioctl request 2^32', (s) => s.ioctl(0, 2 ** 32, null)],
    ['ioctl bigint request 2^32', (s) => s.ioctl(0, (1n << 32n) as unknown as number, null)],
    ['ioctl string request', (s) => s.ioctl(0, '1' as unknown as number, null)],
    ['ioctl missing arg', (s) => (s.ioctl as (...a: unknown[]) => number)(0, 0)],
    ['ioctl string arg', (s) => s.ioctl(0, 0, 'x' as unknown as null)],
    ['ioctl object arg', (s) => s.ioctl(0, 0, {} as unknown as null)],
    ['ioctl ArrayBuffer arg', (s) => s.ioctl(0, 0, new ArrayBuffer(4) as unknown as null)],
    ['ioctl negative arg', (s) => s.ioctl(0, 0, -1)],
    ['ioctl fractional arg', (s) => s.ioctl(0, 0, 0.1)],
    ['ioctl negative bigint arg', (s) => s.ioctl(0, 0, -1n)],
    ['ioctl 2^64 arg', (s) => s.ioctl(0, 0, 1n << 64n)],
    ['open number path', (s) => s.open(5 as unknown as string, 0)],
    ['open NUL path', (s) => s.open('/dev/null\0', 0)],
    ['open missing flags', (s) => (s.open as (...a: unknown[]) => number)('/dev/null')],
    ['open bad mode', (s) => s.open('/dev/null', 0, 0o10000)],
    ['close string', (s) => s.close('1' as unknown as number)],
    ['close negative', (s) => s.close(-1)],
    ['addressOf null', (s) => s.addressOf(null as unknown as Uint8Array)],
    ['addressOf ArrayBuffer', (s) => s.addressOf(new ArrayBuffer(1) as unknown as Uint8Array)],
    ['mmap length -1', (s) => s.mmap(-1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)],
    ['mmap length NaN', (s) => s.mmap(NaN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)],
    ['mmap length 2^60', (s) => s.mmap(2 ** 60, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)],
    ['mmap prot string', (s) => s.mmap(4096, 'r' as unknown as number, MAP_PRIVATE | MAP_ANONYMOUS)],
    ['mmap fd -2', (s) => s.mmap(4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -2)],
    ['mmap offset -1', (s) => s.mmap(4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, -1)],
    ['munmap undefined', (s) => s.munmap(undefined as unknown as Mapping)],
    ['munmap number', (s) => s.munmap(7 as unknown as Mapping)],
    ['munmap forged', (s) => s.munmap({ address: 4096n, length: 4096, buffer: new ArrayBuffer(4096) })],
  ];

  for (const [label, call] of badCalls) {
    it(`rejects the same way: ${label}`, () => {
      const outcomes = [addon, koffi].map((s) => {
        const t: Entry[] = [];
        record(t, label, () => call(s));
        return t[0]![1];
      });
      expect(outcomes[0], 'the addon throws').to.have.property('threw').that.matches(/^(TypeError|RangeError)$/);
      expect(outcomes[1]).to.deep.equal(outcomes[0]);
    });
  }

  it('rejects the same way: munmap of a mapping from the other backend', () => {
    const a = addon.mmap(PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS) as Mapping;
    const k = koffi.mmap(PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS) as Mapping;
    try {
      expect(() => addon.munmap(k)).to.throw(TypeError, /^munmap: mapping must be a Mapping returned by mmap \(got object\)$/);
      expect(() => koffi.munmap(a)).to.throw(TypeError, /^munmap: mapping must be a Mapping returned by mmap \(got object\)$/);
    } finally {
      expect(addon.munmap(a)).to.equal(0);
      expect(koffi.munmap(k)).to.equal(0);
    }
  });
});
