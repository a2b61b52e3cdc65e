// Throughput of the iommufd model: random IOMMU_IOAS_MAP (FIXED) / IOMMU_IOAS_UNMAP
// on one IOAS holding about N live areas, for N = 1e3, 1e4, 1e5. No domain is
// attached, so this measures the IOVA bookkeeping (interval trees, object
// lookups), which is what has to stay O(log n).
import { IommufdModel } from '../lib/model/iommufd.ts';
import { ModelProcess } from '../lib/model/process.ts';

const RW_FIXED = 1 | 2 | 4;
const SLOT = 0x10000n;
const BASE = 0x1_0000_0000n;

interface Figure {
  live: number;
  ops: number;
  opsPerSec: number;
  nsPerOp: number;
}

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function measure(live: number, ops: number): Figure {
  const process = new ModelProcess();
  process.memory.map(0x7f00_0000_0000n, 0x100000n, 3, true);
  const model = new IommufdModel(process);
  const ioasId = model.ioasAlloc().ioasId;
  const slots = live * 2;
  const used = new Uint8Array(slots);
  const usedList: number[] = [];
  const freeList: number[] = [];
  const rnd = prng(live);
  const map = (slot: number) => {
    const r = model.ioasMap({ ioasId, flags: RW_FIXED, userVa: 0x7f00_0000_0000n, length: 0x1000 + Math.floor(rnd() * 15) * 0x1000, iova: BASE + BigInt(slot) * SLOT });
    if (r.errno) throw new Error(`map errno ${r.errno}`);
  };
  const unmap = (slot: number) => {
    const r = model.ioasUnmap({ ioasId, iova: BASE + BigInt(slot) * SLOT, length: SLOT });
    if (r.errno) throw new Error(`unmap errno ${r.errno}`);
  };
  for (let s = 0; s < slots; s++) {
    if (s % 2 === 0) {
      map(s);
      used[s] = 1;
      usedList.push(s);
    } else freeList.push(s);
  }
  const t0 = process_hrtime();
  for (let i = 0; i < ops; i++) {
    if (i % 2 === 0) {
      const k = Math.floor(rnd() * usedList.length);
      const s = usedList[k]!;
      usedList[k] = usedList[usedList.length - 1]!;
      usedList.pop();
      unmap(s);
      freeList.push(s);
    } else {
      const k = Math.floor(rnd() * freeList.length);
      const s = freeList[k]!;
      freeList[k] = freeList[freeList.length - 1]!;
      freeList.pop();
      map(s);
      usedList.push(s);
    }
  }
  const ns = Number(process_hrtime() - t0);
  return { live, ops, opsPerSec: Math.round((ops * 1e9) / ns), nsPerOp: Math.round(ns / ops) };
}

function process_hrtime(): bigint {
  return globalThis.process.hrtime.bigint();
}

/** Prints ops/s and ns/op for random map/unmap at 1e3, 1e4 and 1e5 live areas. */
export function benchModel(opts: { ops?: number; sizes?: number[] } = {}): Figure[] {
  const ops = opts.ops ?? 200_000;
  const sizes = opts.sizes ?? [1_000, 10_000, 100_000];
  measure(1000, 20_000); // warm-up (JIT)
  const figures = sizes.map((n) => measure(n, ops));
  console.log('model: random IOAS_MAP(FIXED)/IOAS_UNMAP on one IOAS');
  for (const f of figures) console.log(`  ${String(f.live).padStart(7)} live areas: ${f.opsPerSec.toLocaleString('en-US').padStart(10)} ops/s, ${f.nsPerOp} ns/op`);
  if (figures.length >= 2) {
    const first = figures[0]!;
    const last = figures[figures.length - 1]!;
    const costRatio = last.nsPerOp / first.nsPerOp;
    const logRatio = Math.log2(last.live) / Math.log2(first.live);
    // A balanced tree predicts cost ∝ log n; cache misses on a 1e5-node tree add to it, a list would be ∝ n.
    const verdict = costRatio < 4 * logRatio ? 'logarithmic order (cache misses add to the log2 ratio)' : 'faster than log n';
    console.log(
      `  per-op cost x${costRatio.toFixed(2)} from ${first.live} to ${last.live} areas (log2 ratio ${logRatio.toFixed(2)}, linear ratio ${last.live / first.live}): ${verdict}`,
    );
  }
  const at1e5 = figures.find((f) => f.live === 100_000);
  if (at1e5) console.log(`  goal >= 100,000 ops/s at 1e5 live areas: ${at1e5.opsPerSec >= 100_000 ? 'met' : 'NOT met'}`);
  return figures;
}
