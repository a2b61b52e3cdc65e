// Lockstep at the system-call boundary: a SysCore that is two. Every open,
// close and ioctl a typed client (lib/kernel) or a test's raw bytes issue
// runs on the kernel, then on the model's system calls (lib/model/syscalls.ts)
// with its own copy of the argument, and is compared: the return value (or
// errno), every byte of the argument buffer after the call, every user buffer
// the call's struct points to (those handed to addressOf since the last
// ioctl), and VmPin/VmLck after every call that can pin or unpin. The model
// never sees a kernel result: it runs on a copy of the bytes taken before
// the kernel call. fd numbers are the one thing translated: the kernel's and
// the model's are their own, and each fd a call makes pairs them.
import { errnoName, type IoctlArg, type Mapping, type SysCore } from '../sys/index.ts';
import type { AnyStructLayout } from '../uapi/layout.ts';
import type { IoctlShape } from '../model/iommufd/main.ts';
import type { ModelSyscalls } from '../model/syscalls.ts';
import type { ModelProcess } from '../model/process.ts';
import { absorbedFaultResult } from '../model/iommufd/selftest.ts';
import { IoctlArgument, MMAP_MIN_ADDR, ModelCannotAnswer, type UserAccess } from '../model/uaccess.ts';
import { readS32, readU64, sameBytes, writeU32, writeU64 } from '../uapi/bytes.ts';
import { fdsOpenedSince, openFds } from '../kernel/fd-table.ts';
import { show, type FieldDifference } from './compare.ts';
import { DESYNCING_REASONS, isListedReason } from './unchecked.ts';

/** A user buffer a struct may point to, as it was before the kernel call and as the model leaves it. */
interface Snapshot {
  address: bigint;
  kernel: Uint8Array;
  model: Uint8Array;
}

export interface UserBuffer {
  address: bigint;
  view: Uint8Array;
}

/** What the lockstep sys needs of the process it belongs to (LockstepProcess). */
export interface LockstepHost {
  readonly checking: boolean;
  readonly modelSys: ModelSyscalls;
  /** kernel fd -> model fd */
  readonly fdMap: Map<number, number>;
  /** kernel fds whose calls run on the kernel alone, with the reason */
  readonly desynced: Map<number, string>;
  /** Live mappings made through the session (their bytes are the process's memory). */
  readonly mappings: Set<Mapping>;
  /**
   * Buffers handed to addressOf (by any of the session's system-call layers):
   * `pending` since the last ioctl, the user memory the next call's struct may
   * point to; `recent` the last ones also before it (a pointer reused later).
   */
  readonly userBuffers: { pending: UserBuffer[]; recent: UserBuffer[] };
  /** Whether the watched fault injector's site fired during `run`. */
  injectedDuring<T>(run: () => T): { result: T; injected: boolean };
  record(entry: SysHistoryEntry): void;
  history(): readonly SysHistoryEntry[];
  countChecked(name: string, kernelNs: number, modelNs: number): void;
  countUnchecked(name: string, reason: string): void;
  /** A checked call whose output had bits the model cannot tell (IoctlArgument.unknownBits), under their reason. */
  countPartlyUnchecked(reason: string): void;
  accountingDifferences(): FieldDifference[];
  /** The model cannot answer, for a reason not on the list: fails the test. */
  notListed(call: string, reason: string, detail: string): Error;
}

export interface SysHistoryEntry {
  call: string;
  kernel: number;
  model?: number;
  /** The fields of the argument struct before the call, decoded with the request's layout only when a report shows them. */
  args?: () => string;
  injected?: true;
  unchecked?: string;
}

export class DivergenceError extends Error {
  override name = 'DivergenceError';
  // Not an own property: mocha's JSON reporter copies an error's own
  // properties into results.json, and the values are bigints.
  readonly #diffs: FieldDifference[];
  constructor(
    readonly op: string,
    diffs: FieldDifference[],
    readonly report: string,
  ) {
    super(report);
    this.#diffs = diffs;
  }

  get diffs(): FieldDifference[] {
    return this.#diffs;
  }
}

/** A result as the report shows it: the errno's name, or the value. */
export function showRet(ret: number | undefined): string {
  if (ret === undefined) return '(not run)';
  return ret < 0 ? `${errnoName(ret)} (${-ret})` : String(ret);
}

function decodeFields(layout: AnyStructLayout | null, bytes: Uint8Array, member?: string): string {
  if (!layout) return `<${bytes.length} bytes>`;
  try {
    const all = layout.decode(bytes) as Record<string, unknown>;
    // A union (iommu_test_cmd's): the header and the one member the request uses.
    if (member) return show(Object.fromEntries(Object.entries(all).filter(([k, v]) => k === member || typeof v !== 'object')));
    return show(all);
  } catch {
    return `<${bytes.length} bytes>`;
  }
}

/** The first differing fields of two argument buffers, by the layout's names where it has them. */
export function bufferDifferences(layout: AnyStructLayout | null, kernel: Uint8Array, model: Uint8Array, prefix: string, member?: string): FieldDifference[] {
  if (sameBytes(kernel, model)) return [];
  const out: FieldDifference[] = [];
  if (layout) {
    for (const f of layout.allFields()) {
      if (f.kind === 'struct' || f.kind === 'flex' || f.offset + f.size > kernel.length) continue;
      let same = true;
      for (let i = f.offset; i < f.offset + f.size; i++) if (kernel[i] !== model[i]) same = false;
      if (!same && member && f.name.includes('.') && !f.name.startsWith(`${member}.`)) continue;
      if (!same) out.push({ path: `${prefix}.${f.name}`, kernel: layout.read(kernel, f.name as never), model: layout.read(model, f.name as never) });
    }
  }
  if (out.length === 0) {
    for (let i = 0; i < kernel.length; i++) {
      if (kernel[i] !== model[i]) {
        out.push({ path: `${prefix}[byte ${i}]`, kernel: kernel[i], model: model[i] });
        if (out.length >= 8) break;
      }
    }
  }
  return out;
}

const NO_BUFFERS: readonly UserBuffer[] = Object.freeze([]);

/**
 * The bytes of a view as a plain Uint8Array: the view itself when it is one
 * (`.buffer` would move a small one off the JS heap: lib/uapi/bytes.ts), else
 * a Uint8Array over its bytes (also for a Buffer, whose slice() is no copy).
 */
function plainBytes(view: ArrayBufferView): Uint8Array {
  return view.constructor === Uint8Array ? (view as Uint8Array) : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}
const NO_SNAPSHOTS: readonly Snapshot[] = Object.freeze([]);

/**
 * The model's user memory for one ioctl: the buffers handed to addressOf for
 * this call (their copies from before the kernel call), the session's
 * mappings (read as they are: the model writes there into an overlay,
 * compared after), nothing below mmap_min_addr.
 */
class SessionUserAccess implements UserAccess {
  constructor(
    readonly sys: LockstepSys,
    readonly snapshots: readonly Snapshot[],
    readonly overlay: { address: bigint; bytes: Uint8Array }[],
  ) {}

  #find(address: bigint, length: number): Uint8Array | null {
    const end = address + BigInt(length);
    for (const s of this.snapshots) {
      if (address >= s.address && end <= s.address + BigInt(s.model.length)) {
        const off = Number(address - s.address);
        return s.model.subarray(off, off + length);
      }
    }
    return null;
  }

  read(address: bigint, length: number): Uint8Array | null {
    if (length === 0) return new Uint8Array(0);
    const snap = this.#find(address, length);
    if (snap) return snap;
    for (const o of this.overlay) {
      if (address >= o.address && address + BigInt(length) <= o.address + BigInt(o.bytes.length)) {
        const off = Number(address - o.address);
        return o.bytes.subarray(off, off + length);
      }
    }
    const mapped = this.sys.mappingBytes(address, length);
    if (mapped) return mapped.slice();
    if (address < MMAP_MIN_ADDR) return null;
    throw new ModelCannotAnswer('user pointer to memory the model was not told about', `0x${address.toString(16)}+${length}`);
  }

  write(address: bigint, bytes: Uint8Array): boolean {
    if (bytes.length === 0) return true;
    const snap = this.#find(address, bytes.length);
    if (snap) {
      snap.set(bytes);
      return true;
    }
    if (this.sys.mappingBytes(address, bytes.length)) {
      this.overlay.push({ address, bytes: bytes.slice() });
      return true;
    }
    if (address < MMAP_MIN_ADDR) return false;
    throw new ModelCannotAnswer('user pointer to memory the model was not told about', `0x${address.toString(16)}+${bytes.length}`);
  }
}

export class LockstepSys implements SysCore {

  constructor(
    readonly host: LockstepHost,
    readonly kernel: SysCore,
  ) {}

  get backend(): SysCore['backend'] {
    return this.kernel.backend;
  }

  addressOf(view: ArrayBufferView): bigint {
    const address = this.kernel.addressOf(view);
    const entry = { address, view: plainBytes(view) };
    const { pending, recent } = this.host.userBuffers;
    if (pending.length >= 16) pending.shift();
    pending.push(entry);
    if (recent.length >= 64) recent.shift();
    recent.push(entry);
    return address;
  }

  /** Model handles of the iommufd mappings (vIOMMU regions, 7.x) made through this sys. */
  readonly #modelMappings = new WeakMap<Mapping, { ctx: unknown; handle: object }>();

  /**
   * mmap of an fd the model holds (an iommufd's driver regions, 7.x) runs on
   * both and compares the errno; a live mapping holds its region's owner on
   * both until munmap. Any other mmap is the process's own memory.
   */
  mmap(length: number, prot: number, flags: number, fd?: number, offset?: number, align?: number): Mapping | number {
    const host = this.host;
    const mfd = fd !== undefined && fd >= 0 ? host.fdMap.get(fd) : undefined;
    // Only an iommufd's mmap is modelled (its driver regions); any other file's mapping is the kernel's alone.
    if (!host.checking || mfd === undefined || host.desynced.has(fd!) || host.modelSys.file(mfd)?.kind !== 'iommufd') {
      return this.kernel.mmap(length, prot, flags, fd, offset, align);
    }
    const kr = this.kernel.mmap(length, prot, flags, fd, offset, align);
    const ret = typeof kr === 'number' ? kr : 0;
    const call = `mmap(fd ${fd}, length ${length}, offset ${offset ?? 0})`;
    const m = this.#askModel('mmap', call, ret, () => host.modelSys.mmap(mfd, BigInt(length), prot, flags, BigInt(offset ?? 0)));
    if (m === null) return kr;
    host.record({ call, kernel: ret, model: m.ret });
    if (typeof kr !== 'number' && m.handle) this.#modelMappings.set(kr, m.handle);
    host.countChecked('mmap', 0, 0);
    if (ret !== m.ret) {
      // Keep both sides whole: what one side mapped and the other did not is undone on that side.
      if (m.handle) host.modelSys.munmap(m.handle);
      const diffs = [{ path: 'return', kernel: showRet(ret), model: showRet(m.ret) }];
      throw new DivergenceError(call, diffs, this.#report(call, diffs));
    }
    return kr;
  }

  munmap(mapping: Mapping, offset?: number, length?: number): number {
    const ret = this.kernel.munmap(mapping, offset, length);
    const handle = this.#modelMappings.get(mapping);
    // iommufd_fops_vma_close runs when the last part of the mapping goes (a split mapping is each part's).
    const whole = (offset ?? 0) === 0 && (length === undefined || length >= mapping.length);
    if (handle && ret === 0 && whole) {
      this.#modelMappings.delete(mapping);
      this.host.modelSys.munmap(handle as Parameters<ModelSyscalls['munmap']>[0]);
    } else if (handle && ret === 0) {
      throw this.host.notListed(`munmap of part of an iommufd mapping`, 'a partial munmap of an iommufd region', `offset ${offset}, length ${length}`);
    }
    return ret;
  }

  // ------------------------------------------------------------ read, write, poll (event queue fds: fault, vEVENTQ)

  /** read(2): on an fd the model holds, both read `count` bytes and the results and bytes are compared. */
  read(fd: number, buffer: ArrayBufferView): number {
    const host = this.host;
    const { result: ret, injected } = host.injectedDuring(() => this.kernel.read(fd, buffer));
    const mfd = host.fdMap.get(fd);
    if (!host.checking) return ret;
    const call = `read(${fd}, ${buffer.byteLength})`;
    // A fault fd's read allocates its cookies (xa_alloc): failed there, the group goes back and nothing was read.
    if (!this.#modelHolds('read', call, fd, mfd, ret, injected)) return ret;
    const m = this.#askModel('read', call, ret, () => host.modelSys.read(mfd, buffer.byteLength));
    if (m === null) return ret;
    host.record({ call, kernel: ret, model: m.ret });
    host.countChecked('read', 0, 0);
    const diffs: FieldDifference[] = [];
    if (ret !== m.ret) diffs.push({ path: 'return', kernel: showRet(ret), model: showRet(m.ret) });
    else if (ret > 0) {
      const kbytes = new Uint8Array(buffer.buffer, buffer.byteOffset, ret);
      if (!sameBytes(kbytes, m.bytes)) diffs.push(...bufferDifferences(null, kbytes, m.bytes, 'read buffer'));
    }
    if (diffs.length) throw new DivergenceError(call, diffs, this.#report(call, diffs));
    return ret;
  }

  /**
   * write(2): on an fd the model holds (an iommufd fault fd's page responses), both write the same bytes (the
   * model its copy, taken before the kernel call) and the results are compared.
   */
  write(fd: number, buffer: ArrayBufferView): number {
    const host = this.host;
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice();
    const { result: ret, injected } = host.injectedDuring(() => this.kernel.write(fd, buffer));
    const mfd = host.fdMap.get(fd);
    if (!host.checking) return ret;
    const call = `write(${fd}, ${buffer.byteLength})`;
    if (!this.#modelHolds('write', call, fd, mfd, ret, injected)) return ret;
    const mret = this.#askModel('write', call, ret, () => host.modelSys.write(mfd, bytes));
    if (mret === null) return ret;
    host.record({ call, kernel: ret, model: mret });
    host.countChecked('write', 0, 0);
    if (ret !== mret) {
      const diffs = [{ path: 'return', kernel: showRet(ret), model: showRet(mret) }];
      throw new DivergenceError(call, diffs, this.#report(call, diffs));
    }
    return ret;
  }

  /** poll(2) of one fd: on an fd the model holds, the revents are compared (a kernel that waited is not). */
  poll(fd: number, events: number, timeoutMs: number): number {
    const host = this.host;
    const ret = this.kernel.poll(fd, events, timeoutMs);
    const mfd = host.fdMap.get(fd);
    if (!host.checking || mfd === undefined || host.desynced.has(fd)) return ret;
    const call = `poll(${fd}, 0x${events.toString(16)})`;
    const mret = this.#askModel('poll', call, ret, () => host.modelSys.poll(mfd, events));
    if (mret === null) return ret;
    host.record({ call, kernel: ret, model: mret });
    host.countChecked('poll', 0, 0);
    if (ret !== mret) {
      const diffs = [{ path: 'revents', kernel: showRet(ret), model: showRet(mret) }];
      throw new DivergenceError(call, diffs, this.#report(call, diffs));
    }
    return ret;
  }

  // ------------------------------------------------------------ open, close

  open(path: string, flags: number, mode?: number): number {
    const host = this.host;
    const { result: fd, injected } = host.injectedDuring(() => this.kernel.open(path, flags, mode));
    const call = `open(${JSON.stringify(path)})`;
    if (fd < 0) {
      if (injected) {
        host.countUnchecked('open', 'failed by fault injection');
        host.record({ call, kernel: fd, injected: true, unchecked: 'failed by fault injection' });
        this.#checkAccounting(call);
      } else {
        host.record({ call, kernel: fd });
      }
      return fd;
    }
    if (!host.checking) return fd;
    try {
      host.fdMap.set(fd, host.modelSys.open(path));
    } catch (e) {
      if (!(e instanceof ModelCannotAnswer)) throw e;
      if (!isListedReason(e.reason)) {
        this.kernel.close(fd);
        throw host.notListed(call, e.reason, e.message);
      }
      host.desynced.set(fd, e.reason);
    }
    host.record({ call, kernel: fd });
    return fd;
  }

  close(fd: number): number {
    const host = this.host;
    const mfd = host.fdMap.get(fd);
    const { result: ret, injected } = host.injectedDuring(() => this.kernel.close(fd));
    const desynced = host.desynced.get(fd);
    host.desynced.delete(fd);
    host.fdMap.delete(fd);
    if (!host.checking) return ret;
    if (mfd === undefined) {
      if (desynced === undefined) throw host.notListed(`close(${fd})`, 'an fd the model did not open', `fd ${fd} was not opened through lockstep`);
      host.countUnchecked('close', desynced);
      return ret;
    }
    // A file's ->release cannot fail: close runs on the model whatever the kernel said (fault injection included).
    const t = process.hrtime.bigint();
    const mret = host.modelSys.close(mfd);
    const modelNs = Number(process.hrtime.bigint() - t);
    const call = `close(${fd})`;
    host.record({ call, kernel: ret, model: mret, ...(injected ? { injected: true as const } : {}) });
    const diffs: FieldDifference[] = [];
    if (ret !== mret && !injected) diffs.push({ path: 'return', kernel: showRet(ret), model: showRet(mret) });
    diffs.push(...host.accountingDifferences());
    host.countChecked('close', 0, modelNs);
    if (diffs.length) throw new DivergenceError(call, diffs, this.#report(call, diffs));
    return ret;
  }

  // ------------------------------------------------------------ ioctl

  ioctl(fd: number, request: number, arg: IoctlArg): number {
    return this.#ioctl(fd, request, arg, () => this.kernel.ioctl(fd, request, arg), null);
  }

  /**
   * An ioctl issued by a forked child (Sys.forkIoctl): the kernel's is run by
   * `run` (the child's result and its copy of the argument's bytes come
   * back); the model's by `child`, one more process of the model that shares
   * the parent's memory (the fork cases' buffer is MAP_SHARED).
   */
  childIoctl(fd: number, request: number, arg: Uint8Array, child: ModelProcess, run: () => { ret: number; out: Uint8Array } | number): number {
    // The fork itself is no ioctl: when it fails, nothing ran and nothing is compared.
    return this.#ioctl(fd, request, arg, () => {
      const r = run();
      if (typeof r === 'number') throw new Error(`fork failed: ${errnoName(r)}`);
      arg.set(r.out.subarray(0, arg.length));
      return r.ret;
    }, child);
  }

  /**
   * Whether the model can be asked about a read or write of `fd` that the kernel answered `kernel`: not
   * when fault injection failed the call, nor on an fd the lockstep marked out of sync (each counted
   * unchecked under its reason); an fd the model never opened is refused as not listed.
   */
  #modelHolds(what: string, call: string, fd: number, mfd: number | undefined, kernel: number, injected: boolean): mfd is number {
    const host = this.host;
    if (injected && kernel < 0) {
      host.countUnchecked(what, 'failed by fault injection');
      host.record({ call, kernel, injected: true, unchecked: 'failed by fault injection' });
      return false;
    }
    const desynced = host.desynced.get(fd);
    if (mfd === undefined || desynced !== undefined) {
      if (desynced === undefined) throw host.notListed(call, 'an fd the model did not open', `fd ${fd} was not opened through lockstep`);
      host.countUnchecked(what, desynced);
      return false;
    }
    return true;
  }

  /**
   * The model's answer to `call`, which the kernel answered `kernel`; null where the model cannot answer
   * (ModelCannotAnswer): the call is then recorded and counted unchecked under its reason, which must be on
   * the explicit list (lib/lockstep/unchecked.ts).
   */
  #askModel<T>(what: string, call: string, kernel: number, ask: () => T): T | null {
    try {
      return ask();
    } catch (e) {
      if (!(e instanceof ModelCannotAnswer)) throw e;
      this.host.record({ call, kernel, unchecked: e.reason });
      if (!isListedReason(e.reason)) throw this.host.notListed(call, e.reason, e.message);
      this.host.countUnchecked(what, e.reason);
      return null;
    }
  }

  #ioctl(fd: number, request: number, arg: IoctlArg, kernelCall: () => number, child: ModelProcess | null): number {
    const host = this.host;
    const pendingList = host.userBuffers.pending;
    const pending = pendingList.length > 0 ? pendingList.splice(0) : NO_BUFFERS;
    if (!host.checking) return kernelCall();
    const mfd = host.fdMap.get(fd);
    const desynced = host.desynced.get(fd);
    const view = ArrayBuffer.isView(arg) ? plainBytes(arg) : null;
    const before = view ? view.slice() : null;
    const shape: IoctlShape | null = mfd !== undefined ? host.modelSys.shape(mfd, request, before) : null;
    const name = shape?.name ?? `ioctl 0x${(request >>> 0).toString(16)}`;
    // The model's copy of the argument, with the caller's fds as the model's.
    let modelBytes: Uint8Array | null = null;
    if (before && shape) {
      modelBytes = this.#modelCopy(before);
      for (const f of shape.fdIn) {
        if (f.offset + 4 > modelBytes.length) continue;
        const mapped = host.fdMap.get(readS32(modelBytes, f.offset));
        if (mapped !== undefined) writeU32(modelBytes, f.offset, mapped);
      }
    }
    const snapshots: readonly Snapshot[] = pending.length > 0 ? pending.map((p) => ({ address: p.address, kernel: p.view, model: p.view.slice() })) : NO_SNAPSHOTS;
    // A call that makes an fd (GET_DEVICE_FD, DMABUF_GET): an iommufd's says so in the shape looked up above,
    // another file's by its request. Both fd tables are listed around it, to pair what each made (a forked
    // child's fds are in its own table: its returned fd is paired alone).
    const returnsFd = mfd !== undefined && desynced === undefined && (host.modelSys.file(mfd)?.kind === 'iommufd' ? shape!.returnsFd === true : host.modelSys.returnsFd(mfd, request, before));
    const fdsBefore = returnsFd && !child ? { kernel: this.#kernelFds(), model: host.modelSys.fdMark() } : null;

    const t0 = process.hrtime.bigint();
    const { result: ret, injected } = host.injectedDuring(kernelCall);
    const kernelNs = Number(process.hrtime.bigint() - t0);
    const args = () => (before ? decodeFields(shape?.layout ?? null, before, shape?.member) : show(arg));
    const call = `${name} on fd ${fd}${child ? ' (from a forked child)' : ''}`;

    if (injected && ret < 0) {
      host.countUnchecked(name, 'failed by fault injection');
      host.record({ call, kernel: ret, args, injected: true, unchecked: 'failed by fault injection' });
      this.#checkAccounting(call);
      return ret;
    }
    if (mfd === undefined || desynced !== undefined) {
      const reason = desynced ?? 'an fd the model did not open';
      host.record({ call, kernel: ret, args, unchecked: reason });
      if (desynced === undefined) throw host.notListed(call, reason, `fd ${fd} was not opened through lockstep`);
      host.countUnchecked(name, reason);
      return ret;
    }

    // The model, on its copies. Its user memory: the buffers handed to addressOf for this call
    // (their copies from before the kernel call), the session's mappings (read as they are:
    // the model writes there into an overlay, compared after), nothing below mmap_min_addr.
    const overlay: { address: bigint; bytes: Uint8Array }[] = [];
    const user = new SessionUserAccess(this, snapshots, overlay);
    const marg = new IoctlArgument(modelBytes, view ? 0n : BigInt((arg ?? 0) as number | bigint), user);
    const t1 = process.hrtime.bigint();
    // A call whose injected site the kernel absorbed: the one model rule that follows such a kernel
    // (IommufdModel.absorbedFault: which auto domain the attach used) is told the kernel's result.
    const mfile = host.modelSys.file(mfd);
    const absorbed = injected && mfile?.kind === 'iommufd' ? absorbedFaultResult(request, view) : null;
    if (absorbed && mfile?.kind === 'iommufd') mfile.ctx.absorbedFault = { kernel: absorbed };
    let mret: number;
    try {
      mret = child ? host.modelSys.ioctlAs(child, mfd, request, marg) : host.modelSys.ioctl(mfd, request, marg);
    } catch (e) {
      if (!(e instanceof ModelCannotAnswer)) throw e;
      host.record({ call, kernel: ret, args, unchecked: e.reason });
      if (!isListedReason(e.reason)) throw host.notListed(call, e.reason, e.message);
      host.countUnchecked(name, e.reason);
      if (DESYNCING_REASONS.has(e.reason)) host.desynced.set(fd, e.reason);
      return ret;
    } finally {
      if (absorbed && mfile?.kind === 'iommufd') mfile.ctx.absorbedFault = null;
    }
    const modelNs = Number(process.hrtime.bigint() - t1);
    host.record(injected ? { call, kernel: ret, model: mret, args, injected: true } : { call, kernel: ret, model: mret, args });

    const diffs: FieldDifference[] = [];
    if (fdsBefore) this.#pairMadeFds(ret, mret, fdsBefore, diffs);
    else if (returnsFd && ret >= 0 && mret >= 0) host.fdMap.set(ret, mret);
    else if (ret !== mret) diffs.push({ path: 'return', kernel: showRet(ret), model: showRet(mret) });
    if (view && modelBytes) {
      // fds the call made: paired, not compared (each side numbers its own).
      for (const f of shape!.fdOut) {
        if (f.offset + 4 > view.length || ret < 0) continue;
        const k = readS32(view, f.offset);
        const m = readS32(modelBytes, f.offset);
        if (k >= 0 && host.modelSys.file(m)) host.fdMap.set(k, m);
        for (let i = 0; i < 4; i++) modelBytes[f.offset + i] = view[f.offset + i]!;
      }
      // fds the caller passed in went to the model as its own numbers: put the caller's back before comparing.
      for (const f of shape!.fdIn) if (f.offset + 4 <= view.length) for (let i = 0; i < 4; i++) modelBytes[f.offset + i] = before![f.offset + i]!;
      // Bits the model wrote without knowing them: the kernel's stand there, and the call is counted partly unchecked.
      for (const u of marg.unknownBits ?? []) {
        if (!isListedReason(u.reason)) throw host.notListed(call, u.reason, `bits 0x${u.mask.toString(16)} of the u64 at offset ${u.offset}`);
        if (u.offset + 8 <= view.length) writeU64(modelBytes, u.offset, (readU64(modelBytes, u.offset) & ~u.mask) | (readU64(view, u.offset) & u.mask));
        host.countPartlyUnchecked(u.reason);
      }
      if (!sameBytes(view, modelBytes)) diffs.push(...bufferDifferences(shape!.layout, view, modelBytes, 'arg', shape!.member));
    }
    for (const s of snapshots) {
      if (!sameBytes(s.kernel, s.model)) diffs.push(...bufferDifferences(null, s.kernel, s.model, `user buffer 0x${s.address.toString(16)}`));
    }
    for (const o of overlay) {
      const real = this.mappingBytes(o.address, o.bytes.length);
      if (real && !sameBytes(real, o.bytes)) diffs.push(...bufferDifferences(null, real, o.bytes, `user memory 0x${o.address.toString(16)}`));
    }
    if (shape!.accounting) diffs.push(...host.accountingDifferences());
    host.countChecked(name, kernelNs, modelNs);
    if (diffs.length) throw new DivergenceError(call, diffs, this.#report(call, diffs));
    return ret;
  }

  #kernelFds(): Set<number> {
    return this.kernel.openFds ? this.kernel.openFds() : openFds();
  }

  /**
   * Pairs the fds a call made on each side (each numbers its own, so they are not compared). The value
   * is an fd where it is one the call made; else it is compared as a number. An fd made and not
   * returned (7.3-rc7's DMABUF_GET, KernelBehaviour.dmabufGetFdUnreported: KF-0005) is paired with
   * the model's in order, and a different count of fds made is a difference of its own.
   */
  #pairMadeFds(ret: number, mret: number, before: { kernel: Set<number>; model: number }, diffs: FieldDifference[]): void {
    const host = this.host;
    const kernelMade = fdsOpenedSince(before.kernel, this.#kernelFds());
    const modelMade = host.modelSys.fdsInstalledSince(before.model);
    const ki = kernelMade.indexOf(ret);
    const mi = modelMade.indexOf(mret);
    if (ki >= 0 && mi >= 0) {
      host.fdMap.set(ret, mret);
      kernelMade.splice(ki, 1);
      modelMade.splice(mi, 1);
    } else if (ret !== mret) {
      diffs.push({ path: 'return', kernel: showRet(ret), model: showRet(mret) });
    }
    if (kernelMade.length !== modelMade.length) {
      diffs.push({ path: 'fds made and not returned', kernel: kernelMade.length, model: modelMade.length });
      return;
    }
    kernelMade.forEach((fd, i) => host.fdMap.set(fd, modelMade[i]!));
  }

  /**
   * The model's copy of an argument: one reused buffer per length (up to a
   * page), as no call keeps it past its ioctl (not the model, nor a report:
   * differences are read out of it). A new typed array of over 64 bytes is an
   * off-heap allocation (iommu_test_cmd is 72), on every one of ~10^5 calls.
   */
  readonly #modelCopies = new Map<number, Uint8Array>();
  #modelCopy(bytes: Uint8Array): Uint8Array {
    if (bytes.length > 4096) return bytes.slice();
    let copy = this.#modelCopies.get(bytes.length);
    if (!copy) this.#modelCopies.set(bytes.length, (copy = new Uint8Array(bytes.length)));
    copy.set(bytes);
    return copy;
  }

  /** The caller's bytes at an address: a buffer recently handed to addressOf, or a session mapping. */
  mappingBytes(address: bigint, length: number): Uint8Array | null {
    const end = address + BigInt(length);
    const recent = this.host.userBuffers.recent;
    for (let i = recent.length - 1; i >= 0; i--) {
      const r = recent[i]!;
      if (address >= r.address && end <= r.address + BigInt(r.view.length) && r.view.buffer.byteLength > 0) {
        const off = Number(address - r.address);
        return r.view.subarray(off, off + length);
      }
    }
    for (const m of this.host.mappings) {
      if (address >= m.address && address + BigInt(length) <= m.address + BigInt(m.length) && m.buffer.byteLength > 0) {
        const off = Number(address - m.address);
        return new Uint8Array(m.buffer, off, length);
      }
    }
    return null;
  }

  #checkAccounting(call: string): void {
    const diffs = this.host.accountingDifferences();
    if (diffs.length) throw new DivergenceError(call, diffs, this.#report(call, diffs));
  }

  #report(call: string, diffs: FieldDifference[]): string {
    const width = Math.max(5, ...diffs.map((d) => d.path.length));
    const history = this.host.history();
    const last = history[history.length - 1];
    return [
      `lockstep divergence in ${call}${last?.args ? ` with ${last.args()}` : ''}`,
      `  ${'field'.padEnd(width)}  kernel                 model`,
      ...diffs.map((d) => `  ${d.path.padEnd(width)}  ${show(d.kernel).padEnd(22)} ${show(d.model)}`),
      '  operations that led here (oldest first):',
      ...history.slice(0, -1).slice(-15).map((h) => `    ${h.call}${h.args ? ` ${h.args()}` : ''} -> kernel ${showRet(h.kernel)}${h.injected ? ' [fault injected]' : ''}${h.model !== undefined ? ` | model ${showRet(h.model)}` : ''}${h.unchecked ? ` [unchecked: ${h.unchecked}]` : ''}`),
    ].join('\n');
  }
}

