// Lockstep: every operation a suite issues runs on the kernel and on the
// model, and the first difference in errno, an output field, or the
// accounting that can be read back (VmPin, VmLck) fails with a readable
// report. Three modes:
//   lockstep  kernel and model, compared (the default where a kernel is there)
//   kernel    the kernel alone (nothing checked against the model)
//   model     the model alone: for development without kernel support, and
//             always labelled as such, never reported as conformance.
// An operation the model does not know yet runs on the kernel alone and is
// counted as unchecked (lib/lockstep/stats.ts); every run prints the share.
import { IommuFd, VfioContainer, VfioGroup, type DeviceFile } from '../kernel/index.ts';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../model/process.ts';
import { iommufdDomainSpec, type HardwareDomainSpec } from '../model/mock.ts';
import type { Type1Platform } from '../model/type1-platform.ts';
import { CAP_IPC_LOCK, CAP_SYS_RESOURCE, capBit, MAP_SHARED, RLIMIT_MEMLOCK, sys, type Mapping, type SysCore } from '../sys/index.ts';
import { pinnedAndLockedPages } from '../sys/proc-status.ts';
import { differences, show, type FieldDifference } from './compare.ts';
import { countOp, lockstepStats } from './stats.ts';

export type LockstepMode = 'lockstep' | 'kernel' | 'model';
export const MODE_ENV = 'IOMMUFD_CONFORMANCE_MODE';

export function lockstepModeFromEnv(): LockstepMode {
  const v = process.env[MODE_ENV] ?? 'lockstep';
  if (v !== 'lockstep' && v !== 'kernel' && v !== 'model') throw new RangeError(`${MODE_ENV}=${v}: use lockstep, kernel or model`);
  return v;
}

type Method = (...args: any[]) => any;

const ENODEV = 19;

/** The iommufd model calls a VFIO group's devices need (IommufdModel). */
interface IommufdDeviceModel {
  vfioGroupAttached?(): { errno: number };
  compatIoas(): { id: number } | null;
  attachHardwareDevice(spec: HardwareDomainSpec, ptId: number): { errno: number; devId: number };
  detachHardwareDevice(devId: number): { errno: number };
}
type AnyObject = Record<string, unknown>;

/** What a model factory must give: an object with (some of) the kernel client's methods. */
export interface ModelFactories {
  iommufd(process: ModelProcess): AnyObject;
  /** The VFIO compat model of an iommufd model context. */
  compat?(iommufdModel: AnyObject): AnyObject;
  type1?(process: ModelProcess): AnyObject;
  /** A VFIO group's model; its setContainer takes a container model, or 'iommufd' with the iommufd model. */
  group?(groupId: number): AnyObject;
}

/** The group calls, with the container given as the (lockstep) container object itself. */
export interface LockstepGroup {
  getStatus(): ReturnType<VfioGroup['getStatus']>;
  setContainer(container: VfioContainer | (IommuFd & { readonly modelContext: AnyObject | null })): { errno: number };
  unsetContainer(): { errno: number };
  getDeviceFd(name: string): ReturnType<VfioGroup['getDeviceFd']>;
  /** close() of a device fd from getDeviceFd: the last one unbinds the device (from its iommufd) or gives back its container use. */
  closeDevice(deviceFd: number): { errno: number };
  close(): { errno: number };
}

export interface HistoryEntry {
  target: string;
  op: string;
  args: unknown[];
  kernel?: unknown;
  model?: unknown;
  /** The injector's nth fault site fired during the kernel call (see withFaultInjection). */
  injected?: true;
}

/**
 * What lockstep watches of a fault injector (lib/kernel/fail-nth.ts,
 * FailNthInjector): whether its nth fault site has fired yet.
 */
export interface FaultInjectionWitness {
  readonly injected: boolean;
}

/** close-like calls: the fd is gone whatever close() returns, and a file's ->release cannot fail. */
const CLOSE_OPS = new Set(['close', 'closeAccess', 'closeDevice']);

export class DivergenceError extends Error {
  override name = 'DivergenceError';
  constructor(
    readonly op: string,
    readonly diffs: FieldDifference[],
    readonly report: string,
  ) {
    super(report);
  }
}

/** Result fields never compared: numbers the kernel and the model pick independently. */
const OPAQUE_OUTPUTS = ['accessFd', 'faultFd', 'deviceFd', 'bytes'];
/** Argument fields that carry an access fd and must be translated for the model. */
const FD_INPUTS = ['accessFd'];

// After these, pinned and locked page counts may have changed.
const ACCOUNTING_OPS = new Set([
  'ioasMap', 'ioasCopy', 'ioasUnmap', 'destroy', 'close', 'closeAccess',
  'testMockDomain', 'testMockDomainFlags', 'testMockDomainReplace', 'testAccessPages', 'testDestroyAccessPages', 'testAccessReplaceIoas',
  'hwptAlloc', 'option', 'mapDma', 'unmapDma', 'setIommu', 'setContainer', 'unsetContainer', 'vfioIoas',
  // A device opened through a group bound to an iommufd attaches to the compat IOAS (and pins); its last close unpins.
  'getDeviceFd', 'closeDevice',
]);

export class LockstepProcess {
  readonly model = new ModelProcess();
  readonly history: HistoryEntry[] = [];
  /** Model contexts that no longer mirror the kernel (see desync), with the reason. */
  readonly #desynced = new WeakMap<object, string>();
  /** Live mappings made through this session, to read user bytes the model needs (it has no memory contents). */
  readonly #mappings = new Set<Mapping>();
  #fdMap = new Map<number, number>();
  #basePin = 0n;
  #baseLck = 0n;
  /** The fault injector watched by withFaultInjection, if any. */
  #injection: FaultInjectionWitness | null = null;

  constructor(
    readonly mode: LockstepMode,
    readonly factories: ModelFactories | null,
  ) {
    lockstepStats().mode = mode;
    if (mode !== 'model') {
      const base = pinnedAndLockedPages();
      this.#basePin = base.pin;
      this.#baseLck = base.lck;
      // The model starts from the process's real credentials and limit.
      const caps = sys().capget();
      if (typeof caps !== 'number') {
        this.model.credentials = {
          ipcLock: (caps.effective & capBit(CAP_IPC_LOCK)) !== 0n,
          sysResource: (caps.effective & capBit(CAP_SYS_RESOURCE)) !== 0n,
        };
      }
      const lim = sys().getrlimit(RLIMIT_MEMLOCK);
      if (typeof lim !== 'number') this.model.memlockLimit = lim.cur;
    }
  }

  get checking(): boolean {
    return this.mode === 'lockstep' && this.factories !== null;
  }

  // ------------------------------------------------------------ memory, mirrored into the model

  mmap(length: number, prot: number, flags: number, fd = -1, offset = 0, align = 0): Mapping {
    const m = sys().mmap(length, prot, flags, fd, offset, align);
    if (typeof m === 'number') throw new Error(`mmap(${length}) failed: errno ${-m}`);
    this.model.memory.map(m.address, BigInt(m.length), prot, (flags & MAP_SHARED) !== 0);
    this.#mappings.add(m);
    return m;
  }

  /**
   * Scratch user memory for an ioctl's user pointer (ACCESS_RW buffers and
   * the like): a mapping the model knows, unlike a JS heap buffer.
   */
  userBuffer(length: number): { view: Uint8Array; address: bigint; mapping: Mapping } {
    const pages = Math.max(1, Math.ceil(length / 4096)) * 4096;
    const mapping = this.mmap(pages, PROT_READ | PROT_WRITE, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */);
    return { view: new Uint8Array(mapping.buffer, 0, length), address: mapping.address, mapping };
  }

  /**
   * Says that a context's model no longer mirrors the kernel, for something
   * the model cannot know (a mapping made by a forked child's mm, physical
   * contiguity of huge pages): from here on its calls run on the kernel
   * alone and count as unchecked, under this reason, until it closes.
   */
  desync(context: object, reason: string): void {
    const model = (context as { modelContext?: unknown }).modelContext;
    if (model && typeof model === 'object') this.#desynced.set(model, reason);
  }

  /** The bytes at a user address, from a mapping made through this session. */
  readUser(address: bigint, length: number): Uint8Array {
    for (const m of this.#mappings) {
      if (address >= m.address && address + BigInt(length) <= m.address + BigInt(m.length) && m.buffer.byteLength > 0) {
        const off = Number(address - m.address);
        return new Uint8Array(m.buffer, off, length).slice();
      }
    }
    throw new Error(`lockstep: 0x${address.toString(16)}+${length} is not in a mapping made through the session`);
  }

  /** New pages in place over part of a mapping (MAP_FIXED inside memory this process owns). */
  mmapOver(mapping: Mapping, offset: number, length: number, prot: number, flags: number, fd = -1, fileOffset = 0): number {
    const r = sys().mmapOver(mapping, offset, length, prot, flags, fd, fileOffset);
    if (r === 0) this.model.memory.map(mapping.address + BigInt(offset), BigInt(length), prot, (flags & MAP_SHARED) !== 0);
    return r;
  }

  munmap(mapping: Mapping, offset = 0, length = mapping.length - offset): number {
    const r = sys().munmap(mapping, offset, length);
    if (r === 0) this.model.memory.unmap(mapping.address + BigInt(offset), BigInt(length));
    if (r === 0 && offset === 0 && length === mapping.length) this.#mappings.delete(mapping);
    return r;
  }

  mprotect(mapping: Mapping, offset: number, length: number, prot: number): number {
    const r = sys().mprotect(mapping, offset, length, prot);
    if (r === 0) this.model.memory.protect(mapping.address + BigInt(offset), BigInt(length), prot & (PROT_READ | PROT_WRITE));
    return r;
  }

  madviseDontNeed(mapping: Mapping, offset: number, length: number): number {
    const r = sys().madvise(mapping, offset, length, 4 /* MADV_DONTNEED */);
    if (r === 0) this.model.memory.adviseDontNeed(mapping.address + BigInt(offset), BigInt(length));
    return r;
  }

  // ------------------------------------------------------------ credentials and limits

  /** Raises or drops a capability in the calling thread's effective set (where ioctls run), and tells the model. */
  setCapability(cap: number, on: boolean): number {
    const caps = sys().capget();
    if (typeof caps === 'number') return caps;
    const bit = capBit(cap);
    const r = sys().capset({ ...caps, effective: on ? caps.effective | bit : caps.effective & ~bit });
    if (r === 0) {
      if (cap === CAP_IPC_LOCK) this.model.credentials.ipcLock = on;
      if (cap === CAP_SYS_RESOURCE) this.model.credentials.sysResource = on;
    }
    return r;
  }

  setMemlockLimit(bytes: bigint): number {
    const lim = sys().getrlimit(RLIMIT_MEMLOCK);
    if (typeof lim === 'number') return lim;
    const r = sys().setrlimit(RLIMIT_MEMLOCK, { cur: bytes, max: lim.max > bytes ? lim.max : bytes });
    if (r === 0) this.model.memlockLimit = bytes;
    return r;
  }

  // ------------------------------------------------------------ devices

  /** /dev/iommu in lockstep: typed as the kernel client, every call checked. */
  openIommufd(opts: { sys?: SysCore } = {}): IommuFd & { readonly modelContext: AnyObject | null } {
    const { errno, iommufd } = this.tryOpenIommufd(opts);
    if (!iommufd) throw new Error(`cannot open /dev/iommu: errno ${errno}`);
    return iommufd;
  }

  /**
   * openIommufd, except that an open() that failed because of fault
   * injection (withFaultInjection) gives its errno instead of throwing: the
   * open allocates the context, a fault site of iommufd_fail_nth.c's bodies.
   * Nothing was made, so there is no model; only the accounting is compared.
   */
  tryOpenIommufd(opts: { sys?: SysCore } = {}): { errno: number; iommufd: (IommuFd & { readonly modelContext: AnyObject | null }) | null } {
    let kernel: IommuFd | null = null;
    if (this.mode !== 'model') {
      const watched = this.#injection;
      const before = watched?.injected ?? true;
      const opened = IommuFd.open(opts.sys);
      if (!opened.iommufd) {
        if (!watched || before || !watched.injected) throw new Error(`cannot open /dev/iommu: errno ${opened.errno}`);
        this.history.push({ target: 'iommufd', op: 'open', args: [], kernel: { errno: opened.errno }, injected: true });
        countOp('iommufd.open [failed by fault injection]', false);
        this.checkAccounting('iommufd.open (failed by fault injection)');
        return { errno: opened.errno, iommufd: null };
      }
      kernel = opened.iommufd;
    }
    const model = this.factories && this.mode !== 'kernel' ? this.factories.iommufd(this.model) : null;
    return { errno: 0, iommufd: this.wrap('iommufd', kernel, model) as IommuFd & { readonly modelContext: AnyObject | null } };
  }

  /** The VFIO container ioctls on an iommufd opened by openIommufd (iommufd's vfio compat). */
  compatOn(iommufd: IommuFd & { readonly modelContext: AnyObject | null }): VfioContainer {
    const kernel = this.mode !== 'model' ? VfioContainer.compatOn(iommufd as unknown as DeviceFile) : null;
    const model = iommufd.modelContext && this.factories?.compat ? this.factories.compat(iommufd.modelContext) : null;
    return this.wrap('compat', kernel, model) as VfioContainer;
  }

  /** The real VFIO container (/dev/vfio/vfio, type1) in lockstep with the type1 model. */
  openContainer(): VfioContainer {
    let kernel: VfioContainer | null = null;
    if (this.mode !== 'model') {
      const opened = VfioContainer.open();
      if (!opened.container) throw new Error(`cannot open /dev/vfio/vfio: errno ${opened.errno}`);
      kernel = opened.container;
    }
    const model = this.factories?.type1 && this.mode !== 'kernel' ? this.factories.type1(this.model) : null;
    return this.wrap('type1', kernel, model) as VfioContainer;
  }

  /**
   * A VFIO group in lockstep with its model. setContainer takes the container
   * object from openContainer (real type1) or from openIommufd (iommufd's
   * compat): the kernel gets its fd, the model gets the matching model.
   */
  openGroup(groupId: number): LockstepGroup {
    let kernel: AnyObject | null = null;
    if (this.mode !== 'model') {
      const opened = VfioGroup.open(groupId);
      if (!opened.group) throw new Error(`cannot open /dev/vfio/${groupId}: errno ${opened.errno}`);
      const group = opened.group;
      kernel = {
        getStatus: () => group.getStatus(),
        setContainer: (c: DeviceFile) => group.setContainer(c.fd),
        unsetContainer: () => group.unsetContainer(),
        getDeviceFd: (name: string) => group.getDeviceFd(name),
        closeDevice: (deviceFd: number) => {
          const ret = sys().close(deviceFd);
          return { errno: ret < 0 ? -ret : 0 };
        },
        close: () => group.close(),
      };
    }
    let model: AnyObject | null = null;
    const groupModel = this.factories?.group && this.mode !== 'kernel' ? this.factories.group(groupId) : null;
    if (groupModel) {
      const call = (name: string, ...args: unknown[]) => (groupModel[name] as Method).apply(groupModel, args);
      model = {
        getStatus: () => call('getStatus'),
        setContainer: (c: { modelContext: AnyObject | null; kind?: string }) => {
          if (c.kind === 'type1') return c.modelContext ? call('setContainer', c.modelContext) : { errno: -1 }; // -1: no model of that container
          // An iommufd (or its compat view): the group model records the binding,
          // and the iommufd model gets its compat IOAS (group.c -> iommufd_vfio_compat_ioas_create).
          // Devices opened through the group later bind to that iommufd model and attach to its
          // compat IOAS (vfio/iommufd.c: vfio_iommufd_compat_attach_ioas), with the group's geometry.
          const view = c.modelContext as (IommufdDeviceModel & { ctx?: IommufdDeviceModel }) | null;
          const ctx = view?.ctx ?? view;
          const platform = (groupModel as { platform?: Type1Platform }).platform;
          const binding =
            ctx?.attachHardwareDevice && platform
              ? {
                  bindDevice: () => {
                    const ioas = ctx.compatIoas();
                    return ioas ? ctx.attachHardwareDevice(iommufdDomainSpec(platform), ioas.id) : { errno: ENODEV, devId: 0 };
                  },
                  unbindDevice: (devId: number) => void ctx.detachHardwareDevice(devId),
                }
              : null;
          const r = call('setContainer', 'iommufd', binding) as { errno: number };
          if (r.errno === 0 && ctx?.vfioGroupAttached) {
            const created = ctx.vfioGroupAttached();
            if (created.errno !== 0) return created;
          }
          return r;
        },
        unsetContainer: () => call('unsetContainer'),
        getDeviceFd: (name: string) => call('getDeviceFd', name),
        closeDevice: (deviceFd: number) => call('closeDevice', deviceFd),
        close: () => call('close'),
      };
    }
    return this.wrap('group', kernel, model) as LockstepGroup;
  }

  // ------------------------------------------------------------ fault injection

  /**
   * Runs `body` with `injector` watched (iommufd_fail_nth.c's sweep of every
   * fault site). A kernel call during which the injector's nth site fired
   * and that then failed is a failure by injection: the model cannot know
   * which allocation or lookup failed (iommufd_get_object is a fault site
   * too, answering ENOENT), so it does not run that call. The kernel's error
   * path must have undone everything, which is what the model's unchanged
   * state now claims: the accounting (VmPin, VmLck) is compared at once, and
   * the test compares the rest (objects, IOVA ranges, mappings, page pins:
   * compareIommufdState in state.ts) once its body stopped.
   * A call where the site fired but that succeeded (the kernel fell back:
   * xarray's GFP_NOWAIT node allocation retried with GFP_KERNEL, a temporary
   * buffer retried smaller) runs on the model and is compared as usual: the
   * injection must not show in its result, except where the kernel turns the
   * failure into another success (an auto-domain attach that failed is taken
   * for an incompatible domain): the model is given the kernel's result for
   * that (IommufdModel.absorbedFault) and the result is still compared.
   * Close-like calls always run on the model: the fd is gone whatever
   * close() returns, and ->release has no way to fail.
   */
  withFaultInjection<T>(injector: FaultInjectionWitness, body: () => T): T {
    const outer = this.#injection;
    this.#injection = injector;
    try {
      return body();
    } finally {
      this.#injection = outer;
    }
  }

  /**
   * Throws a DivergenceError if VmPin or VmLck differ from the model's
   * counters now (after a call that failed by injection, or a state probe).
   */
  checkAccounting(what: string, args: unknown[] = []): void {
    if (!this.checking) return;
    const diffs = this.accountingDifferences();
    if (diffs.length > 0) throw new DivergenceError(what, diffs, this.report(what, args, diffs));
  }

  // ------------------------------------------------------------ the lockstep core

  /** Puts any kernel object and model object in lockstep under one name (tests use it for fakes). */
  pair<T extends object>(target: string, kernel: T | null, model: AnyObject | null): T {
    return this.wrap(target, kernel as AnyObject | null, model) as T;
  }

  private wrap(target: string, kernel: AnyObject | DeviceFile | null, model: AnyObject | null): unknown {
    const self = this;
    const base = (kernel ?? model) as AnyObject;
    if (!base) throw new Error(`${target}: neither a kernel object nor a model`);
    // One forwarding function per method name, made on first use: the
    // selftest loops call the same method ~10^5 times.
    const forwarders = new Map<string, (...args: unknown[]) => unknown>();
    return new Proxy(base, {
      get(obj, prop, receiver) {
        if (prop === 'modelContext') return model;
        const kernelMember = kernel ? Reflect.get(kernel as object, prop) : undefined;
        const modelMember = model ? Reflect.get(model, prop) : undefined;
        const member = kernel ? kernelMember : modelMember;
        if (typeof member !== 'function' || typeof prop !== 'string' || prop === 'constructor') {
          return kernel ? Reflect.get(kernel as object, prop, kernel) : Reflect.get(obj, prop, receiver);
        }
        let forward = forwarders.get(prop);
        if (!forward) {
          forward = (...args: unknown[]) => self.call(target, prop, kernel, model, args);
          forwarders.set(prop, forward);
        }
        return forward;
      },
    });
  }

  private translateArgs(args: unknown[]): unknown[] {
    return args.map((a) => {
      // A raw argument buffer (a hand-built struct) is written by the kernel
      // first: the model gets a copy taken before, so the test reads the
      // kernel's bytes and the two are compared after the call.
      if (a instanceof Uint8Array) return a.slice();
      // Only plain argument objects are rewritten; devices and proxies pass as they are.
      if (typeof a !== 'object' || a === null || Object.getPrototypeOf(a) !== Object.prototype) return a;
      const copy: AnyObject = { ...(a as AnyObject) };
      for (const key of FD_INPUTS) {
        if (typeof copy[key] === 'number') copy[key] = this.#fdMap.get(copy[key] as number) ?? copy[key];
      }
      // Buffers the kernel writes into (a dirty bitmap) get a copy of their own for the model.
      for (const [key, value] of Object.entries(copy)) if (value instanceof Uint8Array) copy[key] = value.slice();
      return copy;
    });
  }

  private call(target: string, op: string, kernel: AnyObject | DeviceFile | null, model: AnyObject | null, args: unknown[]): unknown {
    const entry: HistoryEntry = { target, op, args };
    this.history.push(entry);
    if (this.history.length > 40) this.history.shift();
    // closeAccess and closeDevice take the fd itself as their argument.
    const modelArgs = op === 'closeAccess' || op === 'closeDevice' ? args.map((a) => (typeof a === 'number' ? this.#fdMap.get(a) ?? a : a)) : this.translateArgs(args);
    const desynced = model ? this.#desynced.get(model) : undefined;
    const modelMethod = model && desynced === undefined ? (model[op] as Method | undefined) : undefined;
    if (op === 'testDirty' && modelArgs[0] && typeof modelArgs[0] === 'object') {
      // The mock sets dirty bits from a user bitmap: the model needs its bytes (it has no memory contents).
      const a = modelArgs[0] as { length: bigint | number; pageSize: bigint | number; uptr: bigint | number };
      const bits = Number((BigInt(a.length) / BigInt(a.pageSize) + 7n) / 8n);
      if (this.mode !== 'kernel') (modelArgs[0] as AnyObject).bits = this.readUser(BigInt(a.uptr), bits);
    }
    if (this.mode === 'model') {
      if (!modelMethod) throw new Error(`model-only mode: the model has no ${target}.${op} yet`);
      entry.model = modelMethod.apply(model, modelArgs);
      countOp(`${target}.${op}`, true);
      return entry.model;
    }
    const watched = this.#injection;
    const injectedBefore = watched?.injected ?? true;
    const t0 = process.hrtime.bigint();
    const kernelResult = ((kernel as unknown as AnyObject)[op] as Method).apply(kernel, args);
    const t1 = process.hrtime.bigint();
    entry.kernel = kernelResult;
    if (watched && !injectedBefore && watched.injected) {
      entry.injected = true;
      const errno = (kernelResult as { errno?: unknown } | null)?.errno;
      if (typeof errno === 'number' && errno !== 0 && !CLOSE_OPS.has(op)) {
        countOp(`${target}.${op} [failed by fault injection]`, false);
        this.checkAccounting(`${target}.${op} (failed by fault injection)`, args);
        return kernelResult;
      }
    }
    if (!this.checking || !modelMethod) {
      countOp(desynced ? `${target}.${op} [${desynced}]` : `${target}.${op}`, false);
      return kernelResult;
    }
    const t2 = process.hrtime.bigint();
    // A call in which the injected fault site failed but that succeeded: a
    // model that can follow such a kernel (IommufdModel.absorbedFault) is told,
    // with the kernel's result, for the length of the call.
    const absorbed = entry.injected && model && 'absorbedFault' in model;
    if (absorbed) model.absorbedFault = { kernel: kernelResult };
    let modelResult: unknown;
    try {
      modelResult = modelMethod.apply(model, modelArgs);
    } finally {
      if (absorbed) model.absorbedFault = null;
    }
    const stats = lockstepStats();
    stats.kernelNs += Number(t1 - t0);
    stats.modelNs += Number(process.hrtime.bigint() - t2);
    entry.model = modelResult;
    countOp(`${target}.${op}`, true);
    if (kernelResult && typeof kernelResult === 'object' && modelResult && typeof modelResult === 'object') {
      for (const key of ['accessFd', 'faultFd', 'deviceFd']) {
        const k = (kernelResult as AnyObject)[key];
        const m = (modelResult as AnyObject)[key];
        if (typeof k === 'number' && typeof m === 'number' && (kernelResult as AnyObject).errno === 0) this.#fdMap.set(k, m);
      }
    }
    const diffs = differences(kernelResult, modelResult, OPAQUE_OUTPUTS);
    // What the kernel wrote into argument buffers, against what the model wrote into its copies.
    args.forEach((a, i) => {
      if (a instanceof Uint8Array && modelArgs[i] instanceof Uint8Array) {
        diffs.push(...differences(a, modelArgs[i], [], `args[${i}]`));
        return;
      }
      if (typeof a !== 'object' || a === null || Object.getPrototypeOf(a) !== Object.prototype) return;
      for (const [key, value] of Object.entries(a as AnyObject)) {
        const mine = (modelArgs[i] as AnyObject)[key];
        if (value instanceof Uint8Array && mine instanceof Uint8Array) diffs.push(...differences(value, mine, [], `args.${key}`));
      }
    });
    if (ACCOUNTING_OPS.has(op) && this.accountingDue(op)) diffs.push(...this.accountingDifferences());
    if (diffs.length > 0) throw new DivergenceError(`${target}.${op}`, diffs, this.report(`${target}.${op}`, args, diffs));
    return kernelResult;
  }

  /**
   * Reading /proc/self/status after every map and unmap cost more than the
   * ioctls under TCG (the selftest loops make ~10^4 of them), so an
   * accounting op is checked when the model's counters moved since the last
   * check, when it ends an object's life (close, destroy: where a leaked pin
   * would show), and otherwise every `accountingEvery`-th time, so a kernel
   * that pins where the model does not is still caught within that many ops
   * (the report lists the ops that led there). 1 checks every op.
   */
  accountingEvery = 16;
  #accountingSkipped = 0;
  #lastCheckedCounters = '';

  private accountingDue(op: string): boolean {
    const counters = `${this.model.mmPinnedVm}/${this.model.mmLockedVm}`;
    const due =
      this.accountingEvery <= 1 ||
      counters !== this.#lastCheckedCounters ||
      op === 'destroy' || op.startsWith('close') || op === 'unsetContainer' ||
      ++this.#accountingSkipped >= this.accountingEvery;
    if (due) {
      this.#accountingSkipped = 0;
      this.#lastCheckedCounters = counters;
    }
    return due;
  }

  /** VmPin and VmLck, as /proc/self/status shows them, against the model's counters. */
  accountingDifferences(): FieldDifference[] {
    const out: FieldDifference[] = [];
    const now = pinnedAndLockedPages();
    const pin = now.pin - this.#basePin;
    const lck = now.lck - this.#baseLck;
    if (pin !== this.model.mmPinnedVm) out.push({ path: 'VmPin (pages, since the session began)', kernel: pin, model: this.model.mmPinnedVm });
    if (lck !== this.model.mmLockedVm) out.push({ path: 'VmLck (pages, since the session began)', kernel: lck, model: this.model.mmLockedVm });
    return out;
  }

  private report(op: string, args: unknown[], diffs: FieldDifference[]): string {
    const width = Math.max(5, ...diffs.map((d) => d.path.length));
    const lines = [
      `lockstep divergence in ${op}(${args.map(show).join(', ')})`,
      `  ${'field'.padEnd(width)}  kernel                 model`,
      ...diffs.map((d) => `  ${d.path.padEnd(width)}  ${show(d.kernel).padEnd(22)} ${show(d.model)}`),
      '  operations that led here (oldest first):',
      ...this.history.slice(0, -1).slice(-15).map((h) => `    ${h.target}.${h.op}(${h.args.map(show).join(', ')}) -> kernel ${show(h.kernel)}${h.injected ? ' [fault injected]' : ''}${h.model !== undefined ? ` | model ${show(h.model)}` : ''}`),
    ];
    return lines.join('\n');
  }
}
