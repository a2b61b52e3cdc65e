// File-descriptor, resource-limit, capability, fork and fault-injection calls
// through the addon, exercised on /dev/null and memfds (no /dev/iommu needed).
import { existsSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { skipBecause } from '../support/skip.ts';
import {
  sys, errnoName, capBit, CAP_IPC_LOCK, MFD_CLOEXEC, O_CLOEXEC, O_RDWR, RLIMIT_MEMLOCK,
} from '../../lib/sys/index.ts';
import type { Sys } from '../../lib/sys/index.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';

// _IO(';', 0x84): no driver behind /dev/null implements it, so ENOTTY.
const NOT_A_NULL_IOCTL = 0x3b84;
// FIONREAD on a regular file (a memfd is one) stores size - position in an int.
const FIONREAD = 0x541b;

function capEffFromStatus(): bigint {
  const line = readFileSync('/proc/thread-self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  if (!line) throw new Error('no CapEff line in /proc/thread-self/status');
  return BigInt(`0x${line.split(/\s+/)[1]}`);
}

describe('native addon: system calls', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  let s: Sys;
  let nullFd: number;
  before(() => {
    s = sys();
    nullFd = s.open('/dev/null', O_RDWR | O_CLOEXEC);
    expect(nullFd, errnoName(nullFd)).to.be.at.least(0);
  });
  after(() => { if (s) s.close(nullFd); });

  describe('read, write, poll, peek', () => {
    it('write returns the bytes written, and -errno (EBADF for a closed fd)', () => {
      const fd = s.memfdCreate('write', MFD_CLOEXEC);
      try {
        expect(s.write(fd, new Uint8Array([1, 2, 3]))).to.equal(3);
        expect(s.write(fd, new Uint8Array(0))).to.equal(0);
      } finally {
        s.close(fd);
      }
      expect(s.write(fd, new Uint8Array(4))).to.equal(-9);
    });
    it('read returns the bytes read, 0 at the end, and -errno (EBADF for a closed fd)', () => {
      const fd = s.memfdCreate('read', MFD_CLOEXEC);
      try {
        expect(s.ftruncate(fd, 3)).to.equal(0);
        const buf = new Uint8Array(8).fill(0xaa);
        expect(s.read(fd, buf)).to.equal(3);
        expect([...buf.subarray(0, 4)]).to.deep.equal([0, 0, 0, 0xaa]);
        expect(s.read(fd, buf)).to.equal(0);
      } finally {
        s.close(fd);
      }
      expect(s.read(fd, new Uint8Array(4))).to.equal(-9);
    });
    it('poll returns the revents of one fd (POLLIN | POLLOUT on /dev/null), and POLLNVAL for a closed fd', () => {
      expect(s.poll(nullFd, 0x1 | 0x4, 0)).to.equal(0x1 | 0x4);
      const fd = s.memfdCreate('poll', MFD_CLOEXEC);
      s.close(fd);
      expect(s.poll(fd, 0x1, 0)).to.equal(0x20);
    });
    it('peek copies bytes out of a mapping, and answers -EFAULT (no signal) for memory that cannot be read', () => {
      const m = s.mmap(2 * 4096, 3, 0x22);
      if (typeof m === 'number') throw new Error(`mmap: ${m}`);
      try {
        new Uint8Array(m.buffer).set([1, 2, 3, 4, 5], 4094);
        const got = s.peek(m, 4094, 5);
        expect(got instanceof Uint8Array ? [...got] : got).to.deep.equal([1, 2, 3, 4, 5]);
        // PROT_NONE: a load would fault; the copy through a pipe gets EFAULT.
        expect(s.mprotect(m, 0, 4096, 0)).to.equal(0);
        expect(s.peek(m, 0, 4)).to.equal(-14);
      } finally {
        s.munmap(m);
      }
    });
  });

  describe('open, close, ioctl', () => {
    it('ioctl on /dev/null returns -ENOTTY for a buffer, a bigint, a number and null', () => {
      expect(s.ioctl(nullFd, NOT_A_NULL_IOCTL, new Uint8Array(16))).to.equal(-25);
      expect(s.ioctl(nullFd, NOT_A_NULL_IOCTL, new DataView(new ArrayBuffer(8)))).to.equal(-25);
      expect(s.ioctl(nullFd, NOT_A_NULL_IOCTL, 1n)).to.equal(-25);
      expect(s.ioctl(nullFd, NOT_A_NULL_IOCTL, 0xffff_ffff_ffff_ffffn)).to.equal(-25);
      expect(s.ioctl(nullFd, NOT_A_NULL_IOCTL, 12)).to.equal(-25);
      expect(s.ioctl(nullFd, NOT_A_NULL_IOCTL, null)).to.equal(-25);
      expect(s.ioctl(nullFd, BigInt(NOT_A_NULL_IOCTL) as unknown as number, null), 'request as a bigint').to.equal(-25);
      expect(errnoName(s.ioctl(nullFd, NOT_A_NULL_IOCTL, null))).to.equal('ENOTTY');
    });

    it('ioctl writes through the pointer of a view', () => {
      const fd = s.memfdCreate('fionread', MFD_CLOEXEC);
      try {
        expect(s.ftruncate(fd, 1234)).to.equal(0);
        const count = new Int32Array(1);
        expect(s.ioctl(fd, FIONREAD, count)).to.equal(0);
        expect(count[0]).to.equal(1234);
        // A view at an offset: the pointer is to its first byte, not the buffer's.
        const bytes = new Uint8Array(12);
        expect(s.ioctl(fd, FIONREAD, new DataView(bytes.buffer, 4, 4))).to.equal(0);
        expect(new DataView(bytes.buffer).getInt32(4, true)).to.equal(1234);
        expect([...bytes.subarray(0, 4), ...bytes.subarray(8)]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
        expect(errnoName(s.ioctl(fd, FIONREAD, 1n)), 'a bad pointer').to.equal('EFAULT');
        expect(errnoName(s.ioctl(fd, FIONREAD, null)), 'NULL').to.equal('EFAULT');
      } finally {
        s.close(fd);
      }
    });

    it('a bad fd is EBADF, for ioctl and for close', () => {
      expect(errnoName(s.ioctl(999_999, NOT_A_NULL_IOCTL, null))).to.equal('EBADF');
      const fd = s.open('/dev/null', O_RDWR);
      expect(s.close(fd)).to.equal(0);
      expect(errnoName(s.close(fd))).to.equal('EBADF');
    });

    it('open of a missing path is -ENOENT', () => {
      expect(errnoName(s.open('/nonexistent/iommufd-conformance', O_RDWR))).to.equal('ENOENT');
    });
  });

  describe('resource limits', () => {
    it('getrlimit/setrlimit round-trip RLIMIT_MEMLOCK, then restore it', () => {
      const saved = s.getrlimit(RLIMIT_MEMLOCK);
      if (typeof saved === 'number') throw new Error(errnoName(saved));
      expect(saved.cur).to.be.a('bigint');
      const lower = saved.cur < 65536n ? saved.cur : 65536n;
      try {
        expect(s.setrlimit(RLIMIT_MEMLOCK, { cur: lower, max: saved.max })).to.equal(0);
        expect(s.getrlimit(RLIMIT_MEMLOCK)).to.deep.equal({ cur: lower, max: saved.max });
        expect(errnoName(s.setrlimit(RLIMIT_MEMLOCK, { cur: saved.max + 1n, max: saved.max })), 'cur above max')
          .to.equal('EINVAL');
      } finally {
        expect(s.setrlimit(RLIMIT_MEMLOCK, saved)).to.equal(0);
      }
      expect(s.getrlimit(RLIMIT_MEMLOCK)).to.deep.equal(saved);
    });
  });

  describe('capabilities', () => {
    it('capget matches CapEff in /proc/thread-self/status', () => {
      const caps = s.capget();
      if (typeof caps === 'number') throw new Error(errnoName(caps));
      expect(caps.effective).to.equal(capEffFromStatus());
    });

    it('capset can drop CAP_IPC_LOCK from the effective set and restore it', function () {
      const saved = s.capget();
      if (typeof saved === 'number') throw new Error(errnoName(saved));
      const ipcLock = capBit(CAP_IPC_LOCK);
      if ((saved.permitted & ipcLock) === 0n) skipBecause(this, 'CAP_IPC_LOCK is not in the permitted set (run as root)');
      try {
        expect(s.capset({ ...saved, effective: saved.effective & ~ipcLock })).to.equal(0);
        const dropped = s.capget();
        if (typeof dropped === 'number') throw new Error(errnoName(dropped));
        expect(dropped.effective & ipcLock).to.equal(0n);
        expect(dropped.permitted).to.equal(saved.permitted);
        expect(capEffFromStatus()).to.equal(saved.effective & ~ipcLock);
      } finally {
        expect(s.capset(saved)).to.equal(0);
      }
      expect(s.capget()).to.deep.equal(saved);
    });
  });

  describe('forkIoctl', () => {
    it('the child issues the ioctl and reports ret and the arg bytes (fork_gone)', () => {
      const arg = new Uint8Array([1, 2, 3, 4]);
      const r = s.forkIoctl(nullFd, NOT_A_NULL_IOCTL, arg, false);
      if (typeof r === 'number') throw new Error(errnoName(r));
      expect(r.ret).to.equal(-25);
      expect([...r.out]).to.deep.equal([1, 2, 3, 4]);
      expect(existsSync(`/proc/${r.pid}`), 'the child was reaped').to.equal(false);
    });

    it('out holds the bytes the child ioctl wrote; the parent copy is untouched', () => {
      const fd = s.memfdCreate('fork-fionread', MFD_CLOEXEC);
      try {
        expect(s.ftruncate(fd, 4321)).to.equal(0);
        const count = new Int32Array(1);
        const r = s.forkIoctl(fd, FIONREAD, count, false);
        if (typeof r === 'number') throw new Error(errnoName(r));
        expect(r.ret).to.equal(0);
        expect(new DataView(r.out.buffer, r.out.byteOffset).getInt32(0, true)).to.equal(4321);
        expect(count[0]).to.equal(0);
      } finally {
        s.close(fd);
      }
    });

    it('keepAlive keeps the child until forkRelease, which reaps it (fork_present)', () => {
      const a = s.forkIoctl(nullFd, NOT_A_NULL_IOCTL, new Uint8Array(8), true);
      const b = s.forkIoctl(nullFd, NOT_A_NULL_IOCTL, new Uint8Array(0), true);
      if (typeof a === 'number' || typeof b === 'number') throw new Error('forkIoctl failed');
      expect(a.ret).to.equal(-25);
      expect(b.out.length).to.equal(0);
      expect(existsSync(`/proc/${a.pid}`)).to.equal(true);
      expect(existsSync(`/proc/${b.pid}`)).to.equal(true);
      // Released in fork order: a must not wait on b holding a's release pipe.
      expect(s.forkRelease(a.pid)).to.equal(0);
      expect(existsSync(`/proc/${a.pid}`)).to.equal(false);
      expect(s.forkRelease(b.pid)).to.equal(0);
      expect(existsSync(`/proc/${b.pid}`)).to.equal(false);
      expect(() => s.forkRelease(a.pid)).to.throw(RangeError, /not a child kept alive/);
    });
  });

  describe('ioctlFailNth', () => {
    before(function () {
      if (!existsSync('/proc/thread-self/fail-nth')) {
        skipBecause(this, 'kernel lacks CONFIG_FAULT_INJECTION (/proc/thread-self/fail-nth)');
      }
    });

    it('an ioctl that reaches no fault site reports injected false and leaves fail-nth disarmed', () => {
      const r = s.ioctlFailNth(nullFd, NOT_A_NULL_IOCTL, null, 1000);
      if (typeof r === 'number') throw new Error(errnoName(r));
      expect(r).to.deep.equal({ ret: -25, injected: false });
      expect(readFileSync('/proc/thread-self/fail-nth', 'utf8').trim()).to.equal('0');
      // Disarmed: ordinary calls keep working.
      for (let i = 0; i < 20; i++) {
        const fd = s.open('/dev/null', O_RDWR);
        expect(fd).to.be.at.least(0);
        expect(s.close(fd)).to.equal(0);
      }
    });
  });
});
