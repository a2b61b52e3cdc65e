// ns per ioctl through the addon, through koffi, and from a plain C loop,
// on the same fd with the same request and argument bytes, beside two N-API
// floors (native/fd.cc): one that does nothing with ioctl's arguments (what
// any N-API call costs), and one that issues the ioctl with the least work
// that is still safe. The goal: the addon at most 1.1x the second. A system
// call costs more inside Node's process than in the small C loop (caches and
// TLB hold Node's working set), so the nothing-floor plus the C loop is
// printed for reference but is a floor no addon reaches.
//
// The three run interleaved, round after round, in one process run (the
// machine is noisy: interleaving spreads the noise over all three), and each
// figure is the median of its rounds. The C loop runs as a child process
// that inherits the very fd the JS side uses (as its fd 3) and times itself,
// so process start-up is not counted.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreSys, errnoName, sys, O_CLOEXEC, O_RDWR } from '../lib/sys/index.ts';
import type { SysCore } from '../lib/sys/index.ts';
import { addonNapiFloors } from '../lib/sys/addon.ts';

/** What to benchmark: an fd to issue one request on, with fixed argument bytes. */
export interface IoctlBenchTarget {
  label: string;
  /** Opens (and sets up) the fd; called once. */
  open(): number;
  /** Releases what open() made; defaults to closing the fd. */
  close?(fd: number): void;
  request: number;
  /** The argument, passed as a pointer to these bytes; null passes NULL. */
  arg: Uint8Array | null;
  /**
   * A u64 user pointer inside arg, at `offset`, that each runner points at a
   * zeroed buffer of `bytes` bytes of its own (the C loop is another process:
   * a pointer into this one would fault there).
   */
  scratch?: { offset: number; bytes: number };
}

/** arg with its scratch pointer aimed at a buffer of this process (kept alive by the returned pair). */
function withScratch(s: SysCore, target: IoctlBenchTarget): { arg: Uint8Array | null; scratch: Uint8Array | null } {
  if (!target.arg || !target.scratch) return { arg: target.arg, scratch: null };
  const arg = target.arg.slice();
  const scratch = new Uint8Array(target.scratch.bytes);
  new DataView(arg.buffer).setBigUint64(target.scratch.offset, s.addressOf(scratch), true);
  return { arg, scratch };
}

export interface IoctlBenchOptions {
  /** ioctls per measurement. */
  iterations?: number;
  /** Measured rounds (plus one warm-up round). */
  rounds?: number;
}

/** _IO(';', 0x84): no driver behind /dev/null implements it, so -ENOTTY. */
export const NULL_ENOTTY_TARGET: IoctlBenchTarget = {
  label: '/dev/null ENOTTY',
  open: () => sys().open('/dev/null', O_RDWR | O_CLOEXEC),
  request: 0x3b84,
  arg: new Uint8Array(8),
};

const C_SOURCE = fileURLToPath(new URL('./c/ioctl_loop.c', import.meta.url));

/** Compiles bench/c/ioctl_loop.c once per source version into a cache dir. */
function buildCLoop(): string {
  const source = readFileSync(C_SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'iommufd-conformance-bench');
  const binary = join(dir, `ioctl_loop-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, C_SOURCE], { stdio: 'inherit' });
  }
  return binary;
}

interface Sample { nsPerOp: number; ret: number }

function runJs(s: SysCore, fd: number, target: IoctlBenchTarget, iterations: number): Sample {
  const { request } = target;
  const { arg, scratch } = withScratch(s, target);
  const ioctl = s.ioctl;
  let ret = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) ret = ioctl(fd, request, arg);
  const elapsed = process.hrtime.bigint() - start;
  scratch?.fill(0); // keeps the scratch buffer alive until the loop is done
  return { nsPerOp: Number(elapsed) / iterations, ret };
}

/** The same loop as runJs over the addon's do-nothing function: the N-API floor. */
function runFloor(floor: (fd: number, request: number, arg: Uint8Array | null) => number, fd: number, target: IoctlBenchTarget, iterations: number): Sample {
  const { request } = target;
  const { arg, scratch } = withScratch(sys(), target);
  let ret = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) ret = floor(fd, request, arg);
  const elapsed = process.hrtime.bigint() - start;
  scratch?.fill(0);
  return { nsPerOp: Number(elapsed) / iterations, ret };
}

function runC(binary: string, fd: number, target: IoctlBenchTarget, iterations: number): Sample {
  const argHex = target.arg === null ? '-' : Buffer.from(target.arg.buffer, target.arg.byteOffset, target.arg.byteLength).toString('hex') || '-';
  // The child sees the bench's fd as its fd 3.
  const scratchArg = target.scratch ? [`${target.scratch.offset}:${target.scratch.bytes}`] : [];
  const result = spawnSync(binary, ['3', `0x${target.request.toString(16)}`, argHex, String(iterations), ...scratchArg], {
    stdio: ['ignore', 'pipe', 'inherit', fd],
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`${binary} failed: status ${result.status}, ${result.error ?? ''}`);
  const [ns, ret] = result.stdout.trim().split(/\s+/).map(Number);
  if (ns === undefined || ret === undefined || Number.isNaN(ns)) throw new Error(`bad output from ${binary}: ${result.stdout}`);
  return { nsPerOp: ns, ret };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function benchIoctl(target: IoctlBenchTarget = NULL_ENOTTY_TARGET, options: IoctlBenchOptions = {}): Promise<void> {
  const iterations = options.iterations ?? 200_000;
  const rounds = options.rounds ?? 9;
  const binary = buildCLoop();
  const runners: Array<{ name: string; run(fd: number): Sample }> = [
    { name: 'addon', run: (fd) => runJs(coreSys('addon'), fd, target, iterations) },
    { name: 'koffi', run: (fd) => runJs(coreSys('koffi'), fd, target, iterations) },
    { name: 'C loop', run: (fd) => runC(binary, fd, target, iterations) },
  ];
  const floors = addonNapiFloors();
  const FLOOR = 'N-API nothing';
  const FLOOR_IOCTL = 'N-API ioctl';
  const allRunners = [
    ...runners,
    { name: FLOOR, run: (fd: number) => runFloor(floors.nothing, fd, target, iterations) },
    { name: FLOOR_IOCTL, run: (fd: number) => runFloor(floors.ioctl, fd, target, iterations) },
  ];

  const fd = target.open();
  if (fd < 0) throw new Error(`bench target ${target.label}: open failed with ${errnoName(fd)}`);
  const samples = new Map<string, number[]>(allRunners.map((r) => [r.name, []]));
  const rets = new Map<string, number>();
  try {
    for (const r of allRunners) r.run(fd); // warm-up: JIT, koffi's first-call setup, page cache for the binary
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no runner always goes first after a quiet spell.
      for (let i = 0; i < allRunners.length; i++) {
        const r = allRunners[(round + i) % allRunners.length]!;
        const sample = r.run(fd);
        samples.get(r.name)!.push(sample.nsPerOp);
        if (round === 0 && r.name !== FLOOR) rets.set(r.name, sample.ret);
      }
    }
  } finally {
    if (target.close) target.close(fd);
    else sys().close(fd);
  }

  const distinct = new Set(rets.values());
  if (distinct.size !== 1) {
    throw new Error(`bench ${target.label}: the runners disagree on the result: ${JSON.stringify(Object.fromEntries(rets))}`);
  }
  const ret = [...distinct][0]!;
  const medians = new Map([...samples].map(([name, v]) => [name, median(v)]));
  const c = medians.get('C loop')!;

  console.log(`ioctl: ${target.label} (request 0x${target.request.toString(16)}, ret ${ret < 0 ? `-${errnoName(ret)}` : ret}), ` +
              `${iterations} calls x ${rounds} rounds, median ns/op`);
  console.log(`  ${'backend'.padEnd(13)} ${'ns/op'.padStart(8)} ${'x C'.padStart(6)}   ${'min..max ns/op'}`);
  for (const [name, m] of medians) {
    const all = samples.get(name)!;
    console.log(`  ${name.padEnd(13)} ${m.toFixed(1).padStart(8)} ${(m / c).toFixed(2).padStart(6)}   ` +
                `${Math.min(...all).toFixed(1)}..${Math.max(...all).toFixed(1)}`);
  }
  const nothingNs = medians.get(FLOOR)!;
  const floorIoctlNs = medians.get(FLOOR_IOCTL)!;
  const addonNs = medians.get('addon')!;
  const overFloor = addonNs / floorIoctlNs;
  console.log(`  for reference: N-API nothing + C loop = ${nothingNs.toFixed(1)} + ${c.toFixed(1)} = ${(nothingNs + c).toFixed(1)} ns ` +
              `(addon ${(addonNs / (nothingNs + c)).toFixed(2)}x: the system call itself costs ${(floorIoctlNs - nothingNs - c).toFixed(1)} ns more inside Node)`);
  console.log(`  goal: addon <= 1.1x the N-API ioctl floor: ${overFloor <= 1.1 ? 'met' : 'NOT met'} (${overFloor.toFixed(2)}x)`);
}
