// The fuzzer's commands: one small step each over what the model knows
// (several iommufd contexts; IOAS alloc/destroy, map/unmap/copy with fixed
// and automatic IOVAs, allow_iovas, reserved ranges, options; mock domains
// and their replace; HWPT alloc; accesses: create, pin, unpin, rw, replace;
// dirty tracking; fault queues: alloc, paging and nested HWPTs that report
// to one, a mock device's page fault, reading the queue's fd (whole struct
// iommu_hwpt_pgfault records, or counts that are none), writing page
// responses to it (cookies read, stale or never handed out, bad codes, short
// counts), polling it, closing it), with an optional fail-nth fault on its
// calls.
//
// The oracle is lockstep itself: every call runs on the kernel and on the
// model (lib/lockstep/sys.ts), and any difference throws a DivergenceError.
// A step adds only the checks the model cannot make about itself (an ID it
// was given is not 0), and, after a call failed by fault injection, the
// whole-state comparison of each context (lib/lockstep/state.ts).
//
// Each step is a name and plain arguments (STEPS[name]), so that a failing
// sequence can be written out as JSON and as a readable mocha test that calls
// the same steps. Objects are named by index into what this run made
// (taken modulo the count, so a shrunk sequence stays valid); stale entries
// are kept on purpose: their IDs exercise the ENOENT paths.
import fc from 'fast-check';
import type { FailNthInjector } from '../kernel/fail-nth.ts';
import type { VfioContainer } from '../kernel/index.ts';
import { compareIommufdState, type LockstepGroup, type LockstepIommufd, type LockstepProcess, type UserRange } from '../lockstep/index.ts';
import type { Mapping } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import * as A from './arbitraries.ts';

export interface ContextIds {
  ioas: number[];
  mocks: { stdevId: number; hwptId: number; idevId: number }[];
  hwpts: number[];
  /** HWPTs allocated with IOMMU_HWPT_ALLOC_NEST_PARENT, and those that report to a fault (a subset of hwpts each). */
  nestParents: number[];
  faultHwpts: number[];
  /** Devices (idev IDs) last moved onto a HWPT with a fault: where a page fault is delivered (or was: stale kept). */
  faultDevs: number[];
  accesses: { fd: number; pages: number[] }[];
  /**
   * Fault queues (IOMMU_FAULT_QUEUE_ALLOC): the object, its fd (null once closed), and the cookies its reads
   * handed out (kept after they are answered: a stale cookie is a case of its own).
   */
  faults: { id: number; fd: number | null; cookies: number[] }[];
  /** IOVAs mapped (fixed or handed back), with the user address behind them where known, to unmap, copy, pin and read. */
  iovas: { iova: bigint; uptr: bigint | null }[];
}

/** The viommu profile's VFIO side: which container the group is in (0 type1, 1 compat), its device fds. */
export interface VfioIds {
  groupIn: number | null;
  devices: number[];
  /** IOVAs MAP_DMA took, per container. */
  iovas: bigint[][];
}

/** What a run made, by index: the fast-check model (the oracle is the lockstep model, not this). */
export interface FuzzIds {
  ctxs: ContextIds[];
  /** Null in the mock profile. */
  vfio: VfioIds | null;
}

/** The real side of a run: the lockstep session and the contexts opened for this run. */
export interface FuzzWorld {
  lp: LockstepProcess;
  injector: FailNthInjector;
  fds: LockstepIommufd[];
  buffer: Mapping;
  rw: { view: Uint8Array; address: bigint };
  bitmap: { view: Uint8Array; address: bigint };
  /** Calls made so far (kernel ioctls through lockstep, counted per step). */
  steps: number;
  /** The viommu profile: the vfio-pci device's group and two containers, [real type1, compat on context 0]. */
  vfio: { group: LockstepGroup; containers: VfioContainer[]; bdf: string; type1Buffer: Mapping } | null;
}

export const CONTEXTS = 3;

export function emptyIds(vfio = false): FuzzIds {
  return {
    ctxs: Array.from({ length: CONTEXTS }, () => ({ ioas: [], mocks: [], hwpts: [], nestParents: [], faultHwpts: [], faultDevs: [], accesses: [], faults: [], iovas: [] })),
    vfio: vfio ? { groupIn: null, devices: [], iovas: [[], []] } : null,
  };
}

function at<T>(list: readonly T[], i: number): T | undefined {
  return list.length === 0 ? undefined : list[i % list.length];
}

/** An object ID by index, or (index 0xffff) one that was never handed out. */
function idAt(list: readonly number[], i: number): number {
  return i === 0xffff ? 0x7fff_fff0 : (at(list, i) ?? 0);
}

function userVa(w: FuzzWorld, off: bigint | null): bigint {
  return off === null ? 0n : w.buffer.address + off;
}

/** An IOVA next to (or on) one already mapped: where overlaps and adjacent ranges are. */
function nearKnown(ctx: ContextIds, near: [number, bigint] | null): bigint | null {
  if (near === null) return null;
  const known = at(ctx.iovas, near[0]);
  return known ? (known.iova + near[1]) & A.U64_MAX : null;
}

function notZero(id: number, what: string): void {
  if (id === 0) throw new Error(`${what} succeeded with ID 0`);
}

interface Step<A> {
  arbitrary: fc.Arbitrary<A>;
  /** Whether the step can run on what the run made so far. */
  pre(ids: FuzzIds, a: A): boolean;
  run(ids: FuzzIds, w: FuzzWorld, a: A): void;
}

const ctxOf = (ids: FuzzIds, a: { c: number }) => ids.ctxs[a.c]!;
const fdOf = (w: FuzzWorld, a: { c: number }) => w.fds[a.c]!;
const hasIoas = (ids: FuzzIds, a: { c: number }) => ctxOf(ids, a).ioas.length > 0;

function step<T>(s: { arbitrary: fc.Arbitrary<T>; pre(ids: FuzzIds, a: NoInfer<T>): boolean; run(ids: FuzzIds, w: FuzzWorld, a: NoInfer<T>): void }): Step<T> {
  return s;
}

export const STEPS = {
  ioasAlloc: step({
    arbitrary: fc.record({ c: A.contextIndex, flags: fc.constantFrom(0, 0, 0, 0, 0, 0, 1) }),
    pre: () => true,
    run(ids, w, a) {
      const r = fdOf(w, a).ioasAlloc({ flags: a.flags });
      if (r.errno === 0) {
        notZero(r.ioasId, 'IOMMU_IOAS_ALLOC');
        ctxOf(ids, a).ioas.push(r.ioasId);
      }
    },
  }),

  destroy: step({
    arbitrary: fc.record({ c: A.contextIndex, kind: fc.constantFrom('ioas', 'hwpt', 'mockHwpt', 'idev', 'stdev', 'fault'), i: fc.oneof(A.pick, fc.constant(0xffff)) }),
    pre: () => true,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const list =
        a.kind === 'ioas' ? ctx.ioas : a.kind === 'hwpt' ? ctx.hwpts : a.kind === 'fault' ? ctx.faults.map((f) => f.id) : ctx.mocks.map((m) => (a.kind === 'mockHwpt' ? m.hwptId : a.kind === 'idev' ? m.idevId : m.stdevId));
      fdOf(w, a).destroy(idAt(list, a.i));
    },
  }),

  map: step({
    arbitrary: fc.record({
      c: A.contextIndex, ioas: A.pick, fixed: fc.boolean(), iova: A.iova, near: fc.option(fc.tuple(A.pick, A.nearDelta), { nil: null, freq: 2 }), off: A.userOffset, length: A.length, prot: A.mapProt,
    }),
    pre: hasIoas,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const flags = a.prot | (a.fixed ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0);
      const iova = nearKnown(ctx, a.near) ?? a.iova;
      const r = fdOf(w, a).ioasMap({ ioasId: idAt(ctx.ioas, a.ioas), flags, userVa: userVa(w, a.off), length: a.length, iova: a.fixed ? iova : 0n });
      if (r.errno === 0) {
        if (a.fixed && r.iova !== iova) throw new Error(`IOMMU_IOAS_MAP(FIXED_IOVA ${iova}) reported iova ${r.iova}`);
        ctx.iovas.push({ iova: r.iova, uptr: a.off === null ? null : userVa(w, a.off) });
      }
    },
  }),

  unmap: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, known: fc.option(A.pick, { nil: null }), iova: A.iova, length: A.length }),
    pre: hasIoas,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const iova = a.known !== null ? (at(ctx.iovas, a.known)?.iova ?? a.iova) : a.iova;
      fdOf(w, a).ioasUnmap({ ioasId: idAt(ctx.ioas, a.ioas), iova, length: a.length });
    },
  }),

  unmapAll: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick }),
    pre: hasIoas,
    run(ids, w, a) {
      fdOf(w, a).ioasUnmap({ ioasId: idAt(ctxOf(ids, a).ioas, a.ioas), iova: 0n, length: A.U64_MAX });
    },
  }),

  copy: step({
    arbitrary: fc.record({
      c: A.contextIndex, src: A.pick, dst: A.pick, known: fc.option(A.pick, { nil: null }), srcIova: A.iova, fixed: fc.boolean(), dstIova: A.iova, length: A.length, prot: A.mapProt,
    }),
    pre: hasIoas,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const srcIova = a.known !== null ? (at(ctx.iovas, a.known)?.iova ?? a.srcIova) : a.srcIova;
      const flags = a.prot | (a.fixed ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0);
      const r = fdOf(w, a).ioasCopy({ srcIoasId: idAt(ctx.ioas, a.src), dstIoasId: idAt(ctx.ioas, a.dst), flags, length: a.length, srcIova, dstIova: a.fixed ? a.dstIova : 0n });
      if (r.errno === 0) ctx.iovas.push({ iova: r.dstIova, uptr: null });
    },
  }),

  allowIovas: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, ranges: A.allowRanges }),
    pre: hasIoas,
    run(ids, w, a) {
      fdOf(w, a).ioasAllowIovas({ ioasId: idAt(ctxOf(ids, a).ioas, a.ioas), ranges: a.ranges });
    },
  }),

  iovaRanges: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, capacity: fc.constantFrom(0, 1, 16) }),
    pre: hasIoas,
    run(ids, w, a) {
      fdOf(w, a).ioasIovaRanges({ ioasId: idAt(ctxOf(ids, a).ioas, a.ioas), capacity: a.capacity });
    },
  }),

  addReserved: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, start: A.iova, near: fc.option(fc.tuple(A.pick, A.nearDelta), { nil: null, freq: 2 }), length: A.length }),
    pre: hasIoas,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      fdOf(w, a).testAddReserved({ ioasId: idAt(ctx.ioas, a.ioas), start: nearKnown(ctx, a.near) ?? a.start, length: a.length });
    },
  }),

  option: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, o: A.option }),
    pre: () => true,
    run(ids, w, a) {
      const objectId = a.o.onIoas ? idAt(ctxOf(ids, a).ioas, a.ioas) : 0;
      fdOf(w, a).option({ optionId: a.o.optionId, op: a.o.op, objectId, val64: a.o.val64 });
    },
  }),

  mockDomain: step({
    arbitrary: fc.record({ c: A.contextIndex, pt: A.pick, onHwpt: fc.boolean(), flags: A.mockFlags }),
    pre: hasIoas,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const ptId = a.onHwpt && ctx.hwpts.length > 0 ? idAt(ctx.hwpts, a.pt) : idAt(ctx.ioas, a.pt);
      const r = fdOf(w, a).testMockDomainFlags({ ptId, devFlags: a.flags });
      if (r.errno === 0) {
        notZero(r.stdevId, 'IOMMU_TEST_OP_MOCK_DOMAIN stdev');
        ctx.mocks.push({ stdevId: r.stdevId, hwptId: r.hwptId, idevId: r.idevId });
      }
    },
  }),

  mockDomainReplace: step({
    // toFault: onto a HWPT that reports to a fault queue, where page faults are delivered
    arbitrary: fc.record({ c: A.contextIndex, mock: A.pick, pt: A.pick, onHwpt: fc.boolean(), toFault: fc.constantFrom(false, false, true) }),
    pre: (ids, a) => ctxOf(ids, a).mocks.length > 0 && hasIoas(ids, a),
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const ptId =
        a.toFault && ctx.faultHwpts.length > 0 ? idAt(ctx.faultHwpts, a.pt) : a.onHwpt ? idAt([...ctx.hwpts, ...ctx.mocks.map((m) => m.hwptId)], a.pt) : idAt(ctx.ioas, a.pt);
      const mock = at(ctx.mocks, a.mock)!;
      const r = fdOf(w, a).testMockDomainReplace({ stdevId: mock.stdevId, ptId });
      if (r.errno === 0 && a.toFault && ctx.faultHwpts.includes(ptId)) ctx.faultDevs.push(mock.idevId);
    },
  }),

  hwptAlloc: step({
    arbitrary: fc.record({ c: A.contextIndex, mock: A.pick, ioas: A.pick, flags: A.hwptFlags }),
    pre: (ids, a) => ctxOf(ids, a).mocks.length > 0 && hasIoas(ids, a),
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const r = fdOf(w, a).hwptAlloc({ devId: at(ctx.mocks, a.mock)!.idevId, ptId: idAt(ctx.ioas, a.ioas), flags: a.flags });
      if (r.errno === 0) {
        notZero(r.hwptId, 'IOMMU_HWPT_ALLOC');
        ctx.hwpts.push(r.hwptId);
        if (a.flags & U.IOMMU_HWPT_ALLOC_NEST_PARENT) ctx.nestParents.push(r.hwptId);
      }
    },
  }),

  // Fault queues (6.12 fault.c, 7.x eventq.c; the model's lib/model/iommufd/fault.ts): a page fault is
  // delivered to the fault of the HWPT the device is attached to, read from the queue's fd, answered by a
  // write to it, and answered by the kernel itself when the device leaves that HWPT.
  faultQueueAlloc: step({
    arbitrary: fc.record({ c: A.contextIndex, flags: fc.constantFrom(0, 0, 0, 1) }),
    pre: () => true,
    run(ids, w, a) {
      const r = fdOf(w, a).faultQueueAlloc({ flags: a.flags });
      if (r.errno === 0) {
        notZero(r.faultId, 'IOMMU_FAULT_QUEUE_ALLOC');
        ctxOf(ids, a).faults.push({ id: r.faultId, fd: r.faultFd, cookies: [] });
      }
    },
  }),

  hwptAllocFault: step({
    arbitrary: fc.record({ c: A.contextIndex, mock: A.pick, ioas: A.pick, flags: A.hwptFlags, valid: fc.constantFrom(true, true, true, false), fault: fc.oneof(A.pick, fc.constant(0xffff)) }),
    pre: (ids, a) => ctxOf(ids, a).mocks.length > 0 && hasIoas(ids, a),
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const faultId = idAt(ctx.faults.map((f) => f.id), a.fault);
      const flags = a.flags | (a.valid ? U.IOMMU_HWPT_FAULT_ID_VALID : 0);
      const r = fdOf(w, a).hwptAlloc({ devId: at(ctx.mocks, a.mock)!.idevId, ptId: idAt(ctx.ioas, a.ioas), flags, faultId });
      if (r.errno === 0) {
        notZero(r.hwptId, 'IOMMU_HWPT_ALLOC(FAULT_ID_VALID)');
        ctx.hwpts.push(r.hwptId);
        if (a.valid) ctx.faultHwpts.push(r.hwptId);
      }
    },
  }),

  // A nested HWPT on a paging one (a NEST_PARENT, or not: EINVAL), reporting to a fault or not: on 6.12,
  // where a paging HWPT takes no fault ID (KernelBehaviour.hwptPagingFault), the one that delivers faults.
  hwptAllocNested: step({
    arbitrary: fc.record({
      c: A.contextIndex, mock: A.pick, parent: A.pick, anyParent: fc.constantFrom(false, false, false, true), iotlb: fc.constantFrom(0, 1, 0x12345), valid: fc.constantFrom(true, true, true, false),
      fault: fc.oneof(A.pick, fc.constant(0xffff)),
    }),
    pre: (ids, a) => ctxOf(ids, a).mocks.length > 0 && ctxOf(ids, a).hwpts.length > 0,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const faultId = idAt(ctx.faults.map((f) => f.id), a.fault);
      // struct iommu_hwpt_selftest up to iotlb (6.12's whole struct; 7.x zero-fills the rest)
      const data = new Uint8Array(4);
      new DataView(data.buffer).setUint32(0, a.iotlb, true);
      const r = fdOf(w, a).hwptAlloc({
        devId: at(ctx.mocks, a.mock)!.idevId, ptId: idAt(a.anyParent || ctx.nestParents.length === 0 ? ctx.hwpts : ctx.nestParents, a.parent), flags: a.valid ? U.IOMMU_HWPT_FAULT_ID_VALID : 0, faultId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data,
      });
      if (r.errno === 0) {
        notZero(r.hwptId, 'IOMMU_HWPT_ALLOC(nested)');
        ctx.hwpts.push(r.hwptId);
        if (a.valid) ctx.faultHwpts.push(r.hwptId);
      }
    },
  }),

  // The chain that makes a device deliver page faults, in one step (random steps rarely line up its six
  // calls): an IOAS (a known one, or a new one), a mock device on it, a NEST_PARENT HWPT, a fault queue (new,
  // or a known one), a nested HWPT reporting to it, the device replaced onto that. Every call is in lockstep;
  // the chain stops at the first that fails (under fail-nth, or on a stale ID).
  faultSetup: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, newIoas: fc.boolean(), fault: A.pick, newFault: fc.constantFrom(true, true, false) }),
    pre: () => true,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const fd = fdOf(w, a);
      let ioasId = idAt(ctx.ioas, a.ioas);
      if (a.newIoas || ctx.ioas.length === 0) {
        const r = fd.ioasAlloc({ flags: 0 });
        if (r.errno) return;
        ctx.ioas.push((ioasId = r.ioasId));
      }
      const dev = fd.testMockDomainFlags({ ptId: ioasId, devFlags: 0 });
      if (dev.errno) return;
      ctx.mocks.push({ stdevId: dev.stdevId, hwptId: dev.hwptId, idevId: dev.idevId });
      const parent = fd.hwptAlloc({ devId: dev.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
      if (parent.errno) return;
      ctx.hwpts.push(parent.hwptId);
      ctx.nestParents.push(parent.hwptId);
      let faultId = idAt(ctx.faults.map((f) => f.id), a.fault);
      if (a.newFault || ctx.faults.length === 0) {
        const r = fd.faultQueueAlloc({ flags: 0 });
        if (r.errno) return;
        ctx.faults.push({ id: (faultId = r.faultId), fd: r.faultFd, cookies: [] });
      }
      const data = new Uint8Array(4); // struct iommu_hwpt_selftest { iotlb = 0 }
      const nested = fd.hwptAlloc({ devId: dev.idevId, ptId: parent.hwptId, flags: U.IOMMU_HWPT_FAULT_ID_VALID, faultId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data });
      if (nested.errno) return;
      ctx.hwpts.push(nested.hwptId);
      ctx.faultHwpts.push(nested.hwptId);
      if (fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId: nested.hwptId }).errno === 0) ctx.faultDevs.push(dev.idevId);
    },
  }),

  triggerIopf: step({
    arbitrary: fc.record({
      c: A.contextIndex, mock: fc.oneof(A.pick, fc.constant(0xffff)), onFault: fc.constantFrom(true, true, false), pasid: fc.constantFrom(0, 0, 1, 0xfffff), grpid: fc.constantFrom(0, 2, 0x1ff),
      perm: fc.constantFrom(U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE, U.IOMMU_PGFAULT_PERM_READ, 0, 0xff), addr: A.iova,
    }),
    // A context without a mock device only says ENOENT: drawn there only as the never-handed-out ID.
    pre: (ids, a) => ctxOf(ids, a).mocks.length > 0 || a.mock === 0xffff,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const devId = a.onFault && ctx.faultDevs.length > 0 && a.mock !== 0xffff ? idAt(ctx.faultDevs, a.mock) : idAt(ctx.mocks.map((m) => m.idevId), a.mock);
      fdOf(w, a).testTriggerIopf({ devId, pasid: a.pasid, grpid: a.grpid, perm: a.perm, addr: a.addr });
    },
  }),

  // read(2) of the fault fd, `count` bytes: whole records (40 bytes each), 0, a count that is no multiple of
  // the record (ESPIPE), and more than is queued. The cookies it hands out feed faultRespond.
  faultRead: step({
    arbitrary: fc.record({ c: A.contextIndex, fault: A.pick, records: fc.constantFrom(0, 1, 1, 1, 2, 4), odd: fc.constantFrom(0, 0, 0, 0, 1, -1, 8, 20) }),
    pre: hasOpenFault,
    run(ids, w, a) {
      readFaults(w, a, openFault(ids, a)!, Math.max(0, a.records * U.iommu_hwpt_pgfault.sizeof + a.odd));
    },
  }),

  // write(2) of page responses: cookies read (pending or already answered), 0, one never handed out; codes
  // SUCCESS, INVALID and others (EINVAL); the count cut short of a whole record (ESPIPE) or of the last one.
  faultRespond: step({
    arbitrary: fc.record({
      c: A.contextIndex, fault: A.pick, read: fc.constantFrom(true, true, true, false), readFirst: fc.constantFrom(0, 0, 1, 2),
      // cookie: the nth most recent one read from this queue (the recent ones are the pending ones), or -1/-2
      responses: fc.array(fc.record({ cookie: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, -2) }), code: fc.constantFrom(0, 0, 0, 1, 1, 2, 0xffff_ffff) }), { minLength: 0, maxLength: 3 }),
      cut: fc.constantFrom(0, 0, 0, 0, 1, 4, 8),
    }),
    pre: hasOpenFault,
    run(ids, w, a) {
      // read: a queue whose fd handed out cookies, where there is one
      const f = (a.read && openFault(ids, a, (q) => q.cookies.length > 0)) || openFault(ids, a)!;
      // readFirst: read that many records first (a read and its answer in one step, as a handler would)
      if (a.readFirst) readFaults(w, a, f, a.readFirst * U.iommu_hwpt_pgfault.sizeof);
      const size = U.iommu_hwpt_page_response.sizeof;
      const bytes = new Uint8Array(a.responses.length * size);
      a.responses.forEach((r, i) => {
        // -1: a cookie no read handed out; -2: cookie 0 (xa_alloc never gives it: XA_FLAGS_ALLOC1)
        const cookie = r.cookie === -1 ? 0x7fff_fff0 : r.cookie === -2 ? 0 : (f.cookies[Math.max(0, f.cookies.length - 1 - r.cookie)] ?? 1);
        bytes.set(U.iommu_hwpt_page_response.encode({ cookie, code: r.code }), i * size);
      });
      fdOf(w, a).writeEventq(f.fd!, bytes.subarray(0, Math.max(0, bytes.length - a.cut)));
    },
  }),

  faultPoll: step({
    arbitrary: fc.record({ c: A.contextIndex, fault: A.pick, events: fc.constantFrom(0x1, 0x4, 0x1 | 0x4 | 0x40, 0) }),
    pre: hasOpenFault,
    run(ids, w, a) {
      fdOf(w, a).pollEventq(openFault(ids, a)!.fd!, a.events, 0);
    },
  }),

  closeFault: step({
    arbitrary: fc.record({ c: A.contextIndex, fault: A.pick }),
    pre: (ids, a) => ctxOf(ids, a).faults.some((f) => f.fd !== null),
    run(ids, w, a) {
      const open = ctxOf(ids, a).faults.filter((f) => f.fd !== null);
      const f = open[a.fault % open.length]!;
      // close() releases the fd whatever it returns; pending faults are answered (iommufd_fault_fops_release).
      fdOf(w, a).closeAccess(f.fd!);
      f.fd = null;
    },
  }),

  createAccess: step({
    arbitrary: fc.record({ c: A.contextIndex, ioas: A.pick, flags: A.accessFlags }),
    pre: hasIoas,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const r = fdOf(w, a).testCreateAccess({ ioasId: idAt(ctx.ioas, a.ioas), flags: a.flags });
      if (r.errno === 0) ctx.accesses.push({ fd: r.accessFd, pages: [] });
    },
  }),

  accessPages: step({
    arbitrary: fc.record({
      c: A.contextIndex, access: A.pick, known: fc.option(A.pick, { nil: null }), iova: A.iova, length: A.length,
      // The pages the selftest compares with what it pinned: the mapping's own (as a driver would), another, or none (NULL skips the check).
      user: fc.constantFrom('mapped', 'mapped', 'null', 'other'), off: A.userOffset, flags: A.accessPagesFlags,
    }),
    pre: (ids, a) => ctxOf(ids, a).accesses.length > 0,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const access = at(ctx.accesses, a.access)!;
      const known = a.known !== null ? at(ctx.iovas, a.known) : undefined;
      const iova = known?.iova ?? a.iova;
      const uptr = a.user === 'null' ? 0n : a.user === 'mapped' && known?.uptr != null ? known.uptr : userVa(w, a.off);
      const r = fdOf(w, a).testAccessPages({ accessFd: access.fd, flags: a.flags, iova, length: a.length, uptr });
      if (r.errno === 0) access.pages.push(r.accessPagesId);
    },
  }),

  destroyAccessPages: step({
    arbitrary: fc.record({ c: A.contextIndex, access: A.pick, pages: fc.oneof(A.pick, fc.constant(0xffff)) }),
    pre: (ids, a) => ctxOf(ids, a).accesses.length > 0,
    run(ids, w, a) {
      const access = at(ctxOf(ids, a).accesses, a.access)!;
      fdOf(w, a).testDestroyAccessPages({ accessFd: access.fd, accessPagesId: idAt(access.pages, a.pages) });
    },
  }),

  accessRw: step({
    arbitrary: fc.record({ c: A.contextIndex, access: A.pick, known: fc.option(A.pick, { nil: null }), iova: A.iova, delta: fc.constantFrom(0n, 1n, 100n, A.PAGE - 1n), length: A.rwLength, flags: A.accessRwFlags }),
    pre: (ids, a) => ctxOf(ids, a).accesses.length > 0,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const access = at(ctx.accesses, a.access)!;
      const iova = ((a.known !== null ? (at(ctx.iovas, a.known)?.iova ?? a.iova) : a.iova) + a.delta) & A.U64_MAX;
      fdOf(w, a).testAccessRw({ accessFd: access.fd, iova, length: a.length, uptr: w.rw.address, flags: a.flags });
    },
  }),

  accessReplaceIoas: step({
    arbitrary: fc.record({ c: A.contextIndex, access: A.pick, ioas: A.pick }),
    pre: (ids, a) => ctxOf(ids, a).accesses.length > 0 && hasIoas(ids, a),
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      fdOf(w, a).testAccessReplaceIoas({ accessFd: at(ctx.accesses, a.access)!.fd, ioasId: idAt(ctx.ioas, a.ioas) });
    },
  }),

  closeAccess: step({
    arbitrary: fc.record({ c: A.contextIndex, access: A.pick }),
    pre: (ids, a) => ctxOf(ids, a).accesses.length > 0,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const i = a.access % ctx.accesses.length;
      const r = fdOf(w, a).closeAccess(ctx.accesses[i]!.fd);
      // close() releases the fd whatever it returns.
      ctx.accesses.splice(i, 1);
      void r;
    },
  }),

  setDirtyTracking: step({
    arbitrary: fc.record({ c: A.contextIndex, hwpt: A.pick, enable: fc.boolean(), flags: fc.constantFrom(0, 0, 0, 0, 2) }),
    pre: (ids, a) => ctxOf(ids, a).hwpts.length + ctxOf(ids, a).mocks.length > 0,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const hwptId = idAt([...ctx.hwpts, ...ctx.mocks.map((m) => m.hwptId)], a.hwpt);
      fdOf(w, a).hwptSetDirtyTracking({ hwptId, enable: a.enable, flags: (a.enable ? U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0) | a.flags });
    },
  }),

  getDirtyBitmap: step({
    arbitrary: fc.record({
      c: A.contextIndex, hwpt: A.pick, known: fc.option(A.pick, { nil: null }), iova: A.iova, pages: fc.integer({ min: 0, max: 64 }), unaligned: fc.boolean(), pageSize: A.dirtyPageSize,
      flags: fc.constantFrom(0, 0, U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, 4),
    }),
    pre: (ids, a) => ctxOf(ids, a).hwpts.length + ctxOf(ids, a).mocks.length > 0,
    run(ids, w, a) {
      const ctx = ctxOf(ids, a);
      const hwptId = idAt([...ctx.hwpts, ...ctx.mocks.map((m) => m.hwptId)], a.hwpt);
      const iova = a.known !== null ? (at(ctx.iovas, a.known)?.iova ?? a.iova) : a.iova;
      // At most 64 pages in bits of at least 2 KiB: 16 bytes of the one-page bitmap buffer (the kernel writes no further).
      const length = BigInt(a.pages) * A.PAGE + (a.unaligned ? 1n : 0n);
      fdOf(w, a).hwptGetDirtyBitmap({ hwptId, flags: a.flags, iova, length, pageSize: a.pageSize, bitmap: w.bitmap.view });
    },
  }),

  // ---- the viommu profile: the vfio-pci device's group, a real type1 container (k 0) and iommufd's
  // compat (k 1, on context 0's /dev/iommu), the VFIO container ioctls with edge arguments.

  vfioSetContainer: step({
    arbitrary: fc.record({ k: A.containerIndex }),
    pre: hasVfio,
    run(ids, w, a) {
      if (w.vfio!.group.setContainer(w.vfio!.containers[a.k]!).errno === 0) ids.vfio!.groupIn = a.k;
    },
  }),

  vfioUnsetContainer: step({
    arbitrary: fc.record({}),
    pre: hasVfio,
    run(ids, w) {
      if (w.vfio!.group.unsetContainer().errno === 0) ids.vfio!.groupIn = null;
    },
  }),

  vfioSetIommu: step({
    arbitrary: fc.record({ k: A.containerIndex, type: A.vfioIommuType }),
    pre: hasVfio,
    run(_ids, w, a) {
      w.vfio!.containers[a.k]!.setIommu(a.type);
    },
  }),

  vfioOpenDevice: step({
    arbitrary: fc.record({ right: fc.constantFrom(true, true, true, false) }),
    pre: hasVfio,
    run(ids, w, a) {
      const r = w.vfio!.group.getDeviceFd(a.right ? w.vfio!.bdf : '0000:ff:1f.7');
      if (r.errno === 0) ids.vfio!.devices.push(r.deviceFd);
    },
  }),

  vfioCloseDevice: step({
    arbitrary: fc.record({ i: A.pick }),
    pre: (ids) => (ids.vfio?.devices.length ?? 0) > 0,
    run(ids, w, a) {
      const devices = ids.vfio!.devices;
      const [fd] = devices.splice(a.i % devices.length, 1);
      w.vfio!.group.closeDevice(fd!);
    },
  }),

  vfioMapDma: step({
    arbitrary: fc.record({ k: A.containerIndex, flags: A.vfioMapFlags, off: A.userOffset, iova: A.vfioIova, near: fc.option(fc.tuple(A.pick, A.nearDelta), { nil: null, freq: 2 }), size: A.length, argsz: A.vfioArgsz }),
    pre: hasVfio,
    run(ids, w, a) {
      const known = a.near ? at(ids.vfio!.iovas[a.k]!, a.near[0]) : undefined;
      const iova = known !== undefined ? (known + a.near![1]) & A.U64_MAX : a.iova;
      const argsz = a.argsz === null ? undefined : a.argsz;
      // The real type1 container maps from a buffer of its own: its pins raise the pages' refcounts, which the
      // whole-state comparison reads (IOMMU_TEST_OP_MD_CHECK_REFS) for the iommufd contexts' buffer, and the type1
      // model counts what it charges (VmLck), not pins per page. Compat maps from the iommufd steps' buffer.
      const vaddr = a.k === 0 ? (a.off === null ? 0n : w.vfio!.type1Buffer.address + a.off) : userVa(w, a.off);
      const r = w.vfio!.containers[a.k]!.mapDma({ flags: a.flags, vaddr, iova, size: a.size, argsz });
      if (r.errno === 0) ids.vfio!.iovas[a.k]!.push(iova);
    },
  }),

  vfioUnmapDma: step({
    arbitrary: fc.record({ k: A.containerIndex, flags: A.vfioUnmapFlags, known: fc.option(A.pick, { nil: null }), iova: A.vfioIova, size: A.length, argsz: A.vfioArgsz, bitmap: A.vfioBitmap }),
    pre: hasVfio,
    run(ids, w, a) {
      const iova = (a.known !== null ? at(ids.vfio!.iovas[a.k]!, a.known) : undefined) ?? a.iova;
      const tail = a.flags & U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP ? vfioBitmap(w, a.bitmap) : undefined;
      const argsz = a.argsz === null ? (tail ? 24 + tail.length : undefined) : a.argsz;
      w.vfio!.containers[a.k]!.unmapDma({ flags: a.flags, iova, size: a.size, argsz, tail });
    },
  }),

  vfioGetInfo: step({
    arbitrary: fc.record({ k: A.containerIndex, argsz: fc.constantFrom<number | undefined>(undefined, undefined, 0, 8, 16, 20, 24, 104, 4096) }),
    pre: hasVfio,
    run(_ids, w, a) {
      w.vfio!.containers[a.k]!.getInfo({ argsz: a.argsz });
    },
  }),

  vfioCheckExtension: step({
    arbitrary: fc.record({ k: A.containerIndex, extension: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(0x7fff_ffff, 0xffff_ffff)) }),
    pre: hasVfio,
    run(_ids, w, a) {
      w.vfio!.containers[a.k]!.checkExtension(a.extension);
    },
  }),

  vfioDirtyPages: step({
    arbitrary: fc.record({ k: A.containerIndex, flags: A.vfioDirtyFlags, known: fc.option(A.pick, { nil: null }), iova: A.vfioIova, size: A.length, bitmap: A.vfioBitmap }),
    pre: hasVfio,
    run(ids, w, a) {
      const iova = (a.known !== null ? at(ids.vfio!.iovas[a.k]!, a.known) : undefined) ?? a.iova;
      const tail = a.flags & U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP ? U.vfio_iommu_type1_dirty_bitmap_get.encode({ iova, size: a.size, bitmap: vfioBitmapFields(w, a.bitmap) }) : undefined;
      w.vfio!.containers[a.k]!.dirtyPages({ flags: a.flags, tail });
    },
  }),
};

/** read(2) of a fault fd; the cookies of the records read are kept for faultRespond. */
function readFaults(w: FuzzWorld, a: { c: number }, f: ContextIds['faults'][number], count: number): void {
  const buffer = new Uint8Array(count);
  const r = fdOf(w, a).readEventq(f.fd!, buffer);
  for (let at = 0; at + U.iommu_hwpt_pgfault.sizeof <= r.bytes; at += U.iommu_hwpt_pgfault.sizeof) {
    f.cookies.push(U.iommu_hwpt_pgfault.decode(buffer.subarray(at)).cookie);
  }
  if (f.cookies.length > 32) f.cookies.splice(0, f.cookies.length - 32);
}

function hasOpenFault(ids: FuzzIds, a: { c: number }): boolean {
  return ctxOf(ids, a).faults.some((f) => f.fd !== null);
}

/** A fault queue whose fd is open (and that `also` takes), by index among those; hasOpenFault first. */
function openFault(ids: FuzzIds, a: { c: number; fault: number }, also: (f: ContextIds['faults'][number]) => boolean = () => true): ContextIds['faults'][number] | undefined {
  const open = ctxOf(ids, a).faults.filter((f) => f.fd !== null && also(f));
  return open[a.fault % open.length];
}

function hasVfio(ids: FuzzIds): boolean {
  return ids.vfio !== null;
}

/** struct vfio_bitmap over the session's one-page bitmap buffer (or a NULL / too-small one). */
function vfioBitmapFields(w: FuzzWorld, b: { pgsize: bigint; bytes: number; nullData: boolean }) {
  return { pgsize: b.pgsize, size: BigInt(b.bytes), data: b.nullData ? 0n : w.bitmap.address };
}

function vfioBitmap(w: FuzzWorld, b: { pgsize: bigint; bytes: number; nullData: boolean }): Uint8Array {
  return U.vfio_bitmap.encode(vfioBitmapFields(w, b));
}

/** The steps each profile draws: the viommu profile has no mock domain, accesses or test ops. */
const MOCK_ONLY: ReadonlySet<string> = new Set([
  'addReserved', 'mockDomain', 'mockDomainReplace', 'hwptAlloc', 'hwptAllocFault', 'hwptAllocNested', 'faultSetup', 'triggerIopf', 'createAccess', 'accessPages',
  'destroyAccessPages', 'accessRw', 'accessReplaceIoas', 'closeAccess', 'setDirtyTracking', 'getDirtyBitmap',
]);

/** Steps never run under fail-nth (see commandArbitraries). */
const NO_FAIL_NTH: ReadonlySet<string> = new Set(['triggerIopf', 'faultRead', 'faultRespond']);

export type FuzzProfile = 'mock' | 'viommu';

export function stepsOf(profile: FuzzProfile): StepName[] {
  return (Object.keys(STEPS) as StepName[]).filter((n) => (profile === 'viommu' ? !MOCK_ONLY.has(n) : !n.startsWith('vfio')));
}

export type StepName = keyof typeof STEPS;

/** Whole-state comparison of every open context (after a fault was injected; at the end of a run). */
export function compareAll(w: FuzzWorld): void {
  const memory: UserRange[] = [{ address: w.buffer.address, length: Number(A.BUFFER_BYTES) }];
  for (const fd of w.fds) compareIommufdState(w.lp, fd, memory);
}

/** Runs one step, under fail-nth when `nth` is set, then compares the whole state if a fault was injected. */
export function runStep(name: StepName, args: unknown, nth: number | null, ids: FuzzIds, w: FuzzWorld): void {
  const s = STEPS[name] as unknown as Step<unknown>;
  if (nth !== null) w.injector.arm(nth);
  try {
    s.run(ids, w, args);
  } finally {
    w.injector.disarm();
  }
  w.steps++;
  if (nth !== null && w.injector.injected) compareAll(w);
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));

/** One step as a fast-check command. */
export class FuzzCommand implements fc.Command<FuzzIds, FuzzWorld> {
  constructor(
    readonly name: StepName,
    readonly args: unknown,
    readonly nth: number | null,
  ) {}
  check(ids: Readonly<FuzzIds>): boolean {
    return (STEPS[this.name] as unknown as Step<unknown>).pre(ids as FuzzIds, this.args);
  }
  run(ids: FuzzIds, w: FuzzWorld): void {
    runStep(this.name, this.args, this.nth, ids, w);
  }
  toString(): string {
    return `${this.nth !== null ? `failNth(${this.nth}) ` : ''}${this.name}(${json(this.args)})`;
  }
  /** The step as data (bigints as "123n" strings), for the replay file and the generated test. */
  toJSON(): { name: StepName; args: unknown; nth: number | null } {
    return { name: this.name, args: JSON.parse(json(this.args)), nth: this.nth };
  }
}

/** Revives a step's arguments from toJSON's form. */
export function reviveArgs(args: unknown): unknown {
  return JSON.parse(JSON.stringify(args), (_k, x) => (typeof x === 'string' && /^-?\d+n$/.test(x) ? BigInt(x.slice(0, -1)) : x));
}

/** The command arbitraries: every step, about one in `faultEvery` under fail-nth (0: never). */
export function commandArbitraries(faultEvery: number, profile: FuzzProfile = 'mock'): fc.Arbitrary<fc.Command<FuzzIds, FuzzWorld>>[] {
  const withFaults = faultEvery > 0 ? fc.oneof({ weight: faultEvery - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: A.failNth }) : fc.constant(null);
  const weights: Partial<Record<StepName, number>> = {
    ioasAlloc: 3, map: 5, unmap: 3, copy: 2, mockDomain: 2, createAccess: 2, accessPages: 2, accessRw: 2, faultQueueAlloc: 2, hwptAllocNested: 2, faultSetup: 2, triggerIopf: 3, faultRead: 3, faultRespond: 3,
    vfioSetContainer: 3, vfioSetIommu: 3, vfioOpenDevice: 2, vfioMapDma: 6, vfioUnmapDma: 4, vfioDirtyPages: 2,
  };
  return stepsOf(profile).flatMap((name) => {
    // The VFIO group and the type1 container are not opened through the fault injector's core: no fail-nth there.
    // Nor on a page fault, a fault fd's read or its write: which allocation failed decides what they leave (the
    // iopf group's, which io-pgfault.c answers itself and the ioctl does not report; a read's cookie, after which
    // the read stops short), and the model cannot know it (lib/lockstep/unchecked.ts).
    const nth = name.startsWith('vfio') || NO_FAIL_NTH.has(name) ? fc.constant(null) : withFaults;
    const arb = fc.tuple((STEPS[name] as unknown as Step<unknown>).arbitrary, nth).map(([args, n]) => new FuzzCommand(name, args, n) as fc.Command<FuzzIds, FuzzWorld>);
    return Array.from({ length: weights[name] ?? 1 }, () => arb);
  });
}

