// What used to kill Node with SIGSEGV or SIGBUS through the addon, or let the
// kernel write past a buffer into Node's heap, is now an exception or a
// missing view. Each case runs in its own child process, so a regression is
// a failed test (the child died of a signal), not a dead test runner.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';

const root = resolve(import.meta.dirname, '../..');

/** Runs `body` (a module body with `sys`, `coreSys`, constants and `out(value)` in scope) in a child Node; returns what it printed. */
function child(body: string, backend = 'addon'): { signal: NodeJS.Signals | null; status: number | null; out: unknown; stderr: string } {
  const script = `
    import * as S from ${JSON.stringify(resolve(root, 'lib/sys/index.ts'))};
    import * as K from ${JSON.stringify(resolve(root, 'lib/kernel/index.ts'))};
    import * as U from ${JSON.stringify(resolve(root, 'lib/uapi/index.ts'))};
    const { sys, coreSys, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MFD_CLOEXEC, O_RDWR } = S;
    const s = ${backend === 'addon' ? 'sys()' : `coreSys(${JSON.stringify(backend)})`};
    const out = (v) => process.stdout.write(JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? String(x) : x)));
    const thrown = (f) => { try { f(); return 'no throw'; } catch (e) { return e.constructor.name + ': ' + e.message; } };
    ${body}
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  let out: unknown = null;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    out = r.stdout;
  }
  return { signal: r.signal, status: r.status, out, stderr: r.stderr };
}

function expectSurvived(r: ReturnType<typeof child>): void {
  expect(r.signal, `child died of ${r.signal}: ${r.stderr}`).to.equal(null);
  expect(r.status, r.stderr).to.equal(0);
}

describe('native addon: what used to crash Node', function () {
  this.timeout(120_000);
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('PROT_NONE and PROT_READ mappings get no view (0 bytes), so JS cannot fault on them', () => {
    const r = child(`
      const none = s.mmap(PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
      const ro = s.mmap(PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
      new Uint8Array(none.buffer)[0] = 1;   // on a 0-byte view: nothing happens
      new Uint8Array(ro.buffer)[0] = 1;
      out([none.buffer.byteLength, ro.buffer.byteLength, s.munmap(none), s.munmap(ro)]);
    `);
    expectSurvived(r);
    expect(r.out).to.deep.equal([0, 0, 0, 0]);
  });

  it('mprotect takes the view away (every typed array over it sees 0 bytes) and gives a new one back', () => {
    const r = child(`
      const m = s.mmap(2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const old = new Uint8Array(m.buffer);
      old[5] = 42;
      const steps = [];
      steps.push(s.mprotect(m, PAGE_SIZE, PAGE_SIZE, PROT_NONE), m.buffer.byteLength, old.length);
      old[PAGE_SIZE] = 1;                    // was a SIGSEGV: the page is PROT_NONE
      steps.push(s.mprotect(m, PAGE_SIZE, PAGE_SIZE, PROT_READ), m.buffer.byteLength);
      steps.push(s.mprotect(m, PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE), m.buffer.byteLength);
      const renewed = new Uint8Array(m.buffer);
      renewed[PAGE_SIZE] = 7;
      steps.push(renewed[5], renewed[PAGE_SIZE], s.munmap(m), m.buffer.byteLength);
      out(steps);
    `);
    expectSurvived(r);
    expect(r.out).to.deep.equal([0, 0, 0, 0, 0, 0, 2 * 4096, 42, 7, 0, 0]);
  });

  it('mmapOver with PROT_NONE or PROT_READ pages takes the view away; read-write pages give it back', () => {
    const r = child(`
      const m = s.mmap(4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const old = new Uint8Array(m.buffer);
      const steps = [s.mmapOver(m, PAGE_SIZE, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS), m.buffer.byteLength, old.length];
      old[PAGE_SIZE] = 1;
      steps.push(s.mmapOver(m, PAGE_SIZE, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), m.buffer.byteLength);
      steps.push(s.mmapOver(m, PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), m.buffer.byteLength);
      new Uint8Array(m.buffer)[PAGE_SIZE] = 3;
      steps.push(s.munmap(m));
      out(steps);
    `);
    expectSurvived(r);
    expect(r.out).to.deep.equal([0, 0, 0, 0, 0, 0, 4 * 4096, 0]);
  });

  it('a memfd shorter than the mapping behind mmapOver gives no view (was SIGBUS); ftruncate moves the view with the file', () => {
    const r = child(`
      const fd = s.memfdCreate('short', MFD_CLOEXEC);
      s.ftruncate(fd, PAGE_SIZE);
      const m = s.mmap(2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const old = new Uint8Array(m.buffer);
      const steps = [s.mmapOver(m, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), m.buffer.byteLength, old.length];
      old[PAGE_SIZE + 1] = 1;                // was a SIGBUS: past the end of the memfd
      steps.push(s.ftruncate(fd, 2 * PAGE_SIZE), m.buffer.byteLength);
      new Uint8Array(m.buffer)[2 * PAGE_SIZE - 1] = 9;
      const live = new Uint8Array(m.buffer);
      steps.push(s.ftruncate(fd, PAGE_SIZE), m.buffer.byteLength, live.length);
      live[PAGE_SIZE] = 1;                   // detached by the shrink: nothing happens
      // A plain mmap of a file shorter than the mapping: no view either.
      const direct = s.mmap(2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      steps.push(direct.buffer.byteLength, s.munmap(direct), s.munmap(m), s.close(fd));
      out(steps);
    `);
    expectSurvived(r);
    expect(r.out).to.deep.equal([0, 0, 0, 0, 2 * 4096, 0, 0, 0, 0, 0, 0, 0]);
  });

  for (const backend of ['addon', 'koffi']) {
    it(`${backend}: ioctl refuses, before the call, a buffer shorter than the size the request encodes`, () => {
      const r = child(`
        const fd = s.open('/dev/null', O_RDWR);
        const IOR_64 = U._IOR('x', 1, 64);   // _IOR('x', 1, 64 bytes): the kernel may write 64 bytes
        out([
          thrown(() => s.ioctl(fd, IOR_64, new Uint8Array(16))),
          s.ioctl(fd, IOR_64, new Uint8Array(64)),
          s.ioctl(fd, IOR_64, 0n),            // a raw address is the caller's own business
          s.close(fd),
        ]);
      `, backend);
      expectSurvived(r);
      expect(r.out).to.deep.equal([
        `RangeError: ioctl: arg is 16 bytes, shorter than the 64 bytes request 0x80407801 encodes`,
        -25, -25, 0,
      ]);
    });

    it(`${backend}: a struct whose argsz/size says more than its buffer holds is refused before the call`, () => {
      const r = child(`
        const fd = s.open('/dev/null', O_RDWR);
        const container = new K.VfioContainer('/dev/null', fd, s);
        out([
          thrown(() => container.getInfo({ argsz: 4096, bufferSize: 24 })),
          container.getInfo({ argsz: 24, bufferSize: 24 }).errno,
          thrown(() => K.callStruct(s, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, { size: 4096 })),
          // MAP_DMA copies in minsz and writes nothing back: a lying argsz stays possible (the audit's argsz-beyond-buffer).
          container.mapDma({ flags: 0, vaddr: 0n, iova: 0n, size: 0n, argsz: 0xffffffff }).errno,
        ]);
      `, backend);
      expectSurvived(r);
      expect(r.out).to.deep.equal([
        'RangeError: ioctl: arg is 24 bytes but its leading size (argsz) is 4096: the kernel would write past the buffer (use a buffer of at least 4096 bytes, or a raw address)',
        25,
        'RangeError: ioctl iommu_ioas_alloc: arg is 12 bytes but its leading size (argsz) is 4096: the kernel would write past the buffer (use a buffer of at least 4096 bytes, or a raw address)',
        25,
      ]);
    });
  }
});
