// Lockstep: every system call a suite issues through the session runs on the
// kernel and on the model (lib/lockstep/sys.ts: at the system-call boundary,
// so typed client methods and raw bytes alike), and the first difference in
// the return value, errno, any byte of the argument buffer or of the user
// buffers its struct points to, or VmPin/VmLck fails the test with a report.
// Three modes:
//   lockstep  kernel and model, compared (the default where a kernel is there)
//   kernel    the kernel alone (nothing checked against the model)
//   model     the model alone: for development without kernel support, and
//             always labelled as such, never reported as conformance.
// A call the model cannot answer fails the test unless its reason is on
// the one list (unchecked.ts); every run prints the checked share and the
// unchecked calls per reason (stats.ts).
import { IommuFd, VfioContainer, VfioGroup, type DeviceFile } from '../kernel/index.ts';
import { IoctlArgument, KnownMemory, ModelCannotAnswer, type UserAccess } from '../model/uaccess.ts';
import type { IommufdModel } from '../model/iommufd.ts';
import { ModelProcess, PROT_READ, PROT_WRITE, type ShmemFile } from '../model/process.ts';
import { ModelSyscalls, type ModelPlatform } from '../model/syscalls.ts';
import { CAP_IPC_LOCK, CAP_SYS_RESOURCE, capBit, coreSys, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, RLIMIT_MEMLOCK, sys, type IoctlArg, type Mapping, type SysCore } from '../sys/index.ts';
import { pagemapReader } from '../sys/pagemap.ts';
import { pinnedAndLockedPages, vmPinAndLckKiBOf } from '../sys/proc-status.ts';
import { show, type FieldDifference } from './compare.ts';
import { countOp, countPartly, lockstepStats } from './stats.ts';
import { DivergenceError, LockstepSys, showRet, type LockstepHost, type SysHistoryEntry } from './sys.ts';
import { isListedReason, UNCHECKED_REASONS } from './unchecked.ts';

export { DivergenceError } from './sys.ts';
export type { ModelPlatform } from '../model/syscalls.ts';
/** The former name of ModelPlatform. */
export type ModelFactories = ModelPlatform;

export type LockstepMode = 'lockstep' | 'kernel' | 'model';
export const MODE_ENV = 'IOMMUFD_CONFORMANCE_MODE';

export function lockstepModeFromEnv(): LockstepMode {
  const v = process.env[MODE_ENV] ?? 'lockstep';
  if (v !== 'lockstep' && v !== 'kernel' && v !== 'model') throw new RangeError(`${MODE_ENV}=${v}: use lockstep, kernel or model`);
  return v;
}

/** An iommufd opened through the session: the typed client, and the model context behind its fd (null outside lockstep). */
export type LockstepIommufd = IommuFd & { readonly modelContext: IommufdModel | null };

/** The group calls, with the container given as the container object itself. */
export interface LockstepGroup {
  getStatus(): ReturnType<VfioGroup['getStatus']>;
  setContainer(container: DeviceFile): { errno: number };
  unsetContainer(): { errno: number };
  getDeviceFd(name: string): ReturnType<VfioGroup['getDeviceFd']>;
  /** close() of a device fd from getDeviceFd: the last one unbinds the device (from its iommufd) or gives back its container use. */
  closeDevice(deviceFd: number): { errno: number };
  close(): { errno: number };
}

/**
 * What lockstep watches of a fault injector (lib/kernel/fail-nth.ts,
 * FailNthInjector): whether its nth fault site has fired yet.
 */
export interface FaultInjectionWitness {
  readonly injected: boolean;
}

/** A call the model cannot answer, for a reason that is not on the list (unchecked.ts). */
export class UncheckedCallError extends Error {
  override name = 'UncheckedCallError';
  constructor(
    readonly call: string,
    readonly reason: string,
    detail: string,
  ) {
    super(`lockstep: the model cannot answer ${call}: ${reason} (${detail}); only the reasons listed in lib/lockstep/unchecked.ts may go unchecked`);
  }
}

/**
 * The model alone as a SysCore: model-only mode, and a stand-in kernel for
 * tests of the lockstep layer itself. Buffers handed to addressOf since the
 * last ioctl and the given mappings are its user memory; elsewhere it cannot
 * answer (or, with `unknownFaults`, a stand-in kernel's view: the copy faults).
 */
export class ModelSysCore implements SysCore {
  readonly backend = 'addon' as const;
  readonly #memory = new KnownMemory();
  constructor(
    readonly modelSys: ModelSyscalls,
    readonly opts: {
      mappings?: Set<Mapping>;
      count?: boolean;
      unknownFaults?: boolean;
      /** Real fds the model stands in for with files of its own (memfds: kernel fd -> model fd), translated where a call takes an fd. */
      files?: Map<number, number>;
    } = {},
  ) {}
  addressOf(view: ArrayBufferView): bigint {
    const address = coreSys().addressOf(view);
    this.#memory.add(address, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    return address;
  }
  mmap(...args: Parameters<SysCore['mmap']>): ReturnType<SysCore['mmap']> {
    const [length, prot, flags, fd, offset] = args;
    if (fd === undefined || fd < 0 || !this.modelSys.file(fd)) return coreSys().mmap(...args);
    // An iommufd region (7.x): the model answers; the memory is an anonymous stand-in of the same length.
    const m = this.modelSys.mmap(fd, BigInt(length), prot, flags, BigInt(offset ?? 0));
    return m.ret < 0 ? m.ret : coreSys().mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  }
  munmap(...args: Parameters<SysCore['munmap']>): number {
    return coreSys().munmap(...args);
  }
  openFds(): Set<number> {
    return new Set(this.modelSys.files.keys());
  }
  open(path: string, _flags?: number): number {
    return this.modelSys.open(path);
  }
  read(fd: number, buffer: ArrayBufferView): number {
    const r = this.modelSys.read(fd, buffer.byteLength);
    if (r.ret > 0) new Uint8Array(buffer.buffer, buffer.byteOffset, r.ret).set(r.bytes);
    return r.ret;
  }
  write(fd: number, buffer: ArrayBufferView): number {
    return this.modelSys.write(fd, new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice());
  }
  poll(fd: number, events: number, _timeoutMs: number): number {
    return this.modelSys.poll(fd, events);
  }
  close(fd: number): number {
    if (this.opts.count) countOp('close', true);
    const mfd = this.opts.files?.get(fd);
    if (mfd !== undefined) {
      // A memfd: the real one (its mappings are real memory) and the model's file.
      this.opts.files!.delete(fd);
      this.modelSys.close(mfd);
      return coreSys().close(fd);
    }
    return this.modelSys.close(fd);
  }
  ioctl(fd: number, request: number, arg: IoctlArg): number {
    const view = ArrayBuffer.isView(arg) ? new Uint8Array(arg.buffer, arg.byteOffset, arg.byteLength) : null;
    const known = (a: bigint, n: number, run: () => Uint8Array | boolean | null) => {
      try {
        return run();
      } catch (e) {
        if (this.opts.unknownFaults && e instanceof ModelCannotAnswer) return null;
        throw e;
      }
    };
    const user: UserAccess = {
      read: (a, n) => this.#mapped(a, n)?.slice() ?? (known(a, n, () => this.#memory.read(a, n)) as Uint8Array | null),
      write: (a, b) => {
        const m = this.#mapped(a, b.length);
        if (m) return (m.set(b), true);
        return !!known(a, b.length, () => this.#memory.write(a, b));
      },
    };
    // fds the caller passes (a memfd to IOMMU_IOAS_MAP_FILE) reach the model as its own, and are put back after.
    const restore: { offset: number; value: number }[] = [];
    if (view && this.opts.files?.size) {
      for (const f of this.modelSys.shape(fd, request, view).fdIn) {
        if (f.offset + 4 > view.length) continue;
        const dv = new DataView(view.buffer, view.byteOffset + f.offset, 4);
        const mapped = this.opts.files.get(dv.getInt32(0, true));
        if (mapped === undefined) continue;
        restore.push({ offset: f.offset, value: dv.getInt32(0, true) });
        dv.setInt32(0, mapped, true);
      }
    }
    try {
      const r = this.modelSys.ioctl(fd, request, new IoctlArgument(view, view ? 0n : BigInt((arg ?? 0) as number | bigint), user));
      if (this.opts.count) countOp(this.modelSys.shape(fd, request, view).name, true);
      return r;
    } finally {
      for (const { offset, value } of restore) new DataView(view!.buffer, view!.byteOffset + offset, 4).setInt32(0, value, true);
      this.#memory.clear();
    }
  }
  #mapped(address: bigint, length: number): Uint8Array | null {
    for (const m of this.opts.mappings ?? []) {
      if (address >= m.address && address + BigInt(length) <= m.address + BigInt(m.length) && m.buffer.byteLength > 0) return new Uint8Array(m.buffer, Number(address - m.address), length);
    }
    return null;
  }
}

/** How the session reads VmPin and VmLck (pages): /proc/self/status, or a stand-in kernel's counters in tests. */
export type AccountingReader = () => { pin: bigint; lck: bigint };

export class LockstepProcess implements LockstepHost {
  readonly model = new ModelProcess();
  readonly modelSys: ModelSyscalls;
  readonly fdMap = new Map<number, number>();
  readonly desynced = new Map<number, string>();
  /** Live mappings made through this session: their bytes are the user memory the model reads. */
  readonly mappings = new Set<Mapping>();
  readonly userBuffers: LockstepHost['userBuffers'] = { pending: [], recent: [] };
  readonly #history: SysHistoryEntry[] = [];
  #basePin = 0n;
  #baseLck = 0n;
  /** The fault injector watched by withFaultInjection, if any. */
  #injection: FaultInjectionWitness | null = null;
  /** The system calls every client of this session uses: kernel and model in lockstep, or one of them. */
  readonly sys: SysCore;

  readonly #readAccounting: AccountingReader;

  constructor(
    readonly mode: LockstepMode,
    readonly platform: ModelPlatform | null,
    opts: { kernel?: SysCore; readAccounting?: AccountingReader } = {},
  ) {
    lockstepStats().mode = mode;
    this.modelSys = new ModelSyscalls(this.model, platform ?? {});
    this.#readAccounting = opts.readAccounting ?? pinnedAndLockedPages;
    this.sys = this.sysOver(opts.kernel ?? coreSys());
    if (mode !== 'model') {
      const base = this.#readAccounting();
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
      // Physical addresses, where the process may read them (root): they decide 1 MiB mock IOPTEs.
      if (!opts.kernel) this.model.memory.physicalAddress = pagemapReader();
    }
  }

  get checking(): boolean {
    return this.mode === 'lockstep' && this.platform !== null;
  }

  /** The system calls of this session over a given kernel core (a fault injector's, another backend's). */
  sysOver(kernel: SysCore): SysCore {
    if (this.mode === 'model') return new ModelSysCore(this.modelSys, { mappings: this.mappings, count: true, files: this.fdMap });
    if (this.mode === 'kernel' || this.platform === null) return kernel;
    return new LockstepSys(this, kernel);
  }

  // ------------------------------------------------------------ LockstepHost

  injectedDuring<T>(run: () => T): { result: T; injected: boolean } {
    const watched = this.#injection;
    const before = watched?.injected ?? true;
    const result = run();
    return { result, injected: !!watched && !before && watched.injected };
  }

  record(entry: SysHistoryEntry): void {
    this.#history.push(entry);
    if (this.#history.length > 40) this.#history.shift();
  }

  history(): readonly SysHistoryEntry[] {
    return this.#history;
  }

  countChecked(name: string, kernelNs: number, modelNs: number): void {
    const stats = lockstepStats();
    stats.kernelNs += kernelNs;
    stats.modelNs += modelNs;
    countOp(name, true);
  }

  countUnchecked(name: string, reason: string): void {
    countOp(name, false, reason);
  }

  countPartlyUnchecked(reason: string): void {
    countPartly(reason);
  }

  notListed(call: string, reason: string, detail: string): Error {
    return new UncheckedCallError(call, reason, detail);
  }

  // ------------------------------------------------------------ memory, mirrored into the model

  mmap(length: number, prot: number, flags: number, fd = -1, offset = 0, align = 0): Mapping {
    const m = sys().mmap(length, prot, flags, fd, offset, align);
    if (typeof m === 'number') throw new Error(`mmap(${length}) failed: errno ${-m}`);
    this.model.memory.map(m.address, BigInt(m.length), prot, (flags & MAP_SHARED) !== 0, this.#memfdOf(fd, offset));
    this.mappings.add(m);
    return m;
  }

  // ------------------------------------------------------------ memfds (IOMMU_IOAS_MAP_FILE)

  /** The model's file behind a memfd made by memfdCreate, for a mapping of it. */
  #memfdOf(fd: number, offset: number): { file: ShmemFile; offset: bigint } | undefined {
    if (fd < 0) return undefined;
    const mfd = this.fdMap.get(fd);
    const f = mfd === undefined ? undefined : this.modelSys.file(mfd);
    return f?.kind === 'memfd' ? { file: f.file, offset: BigInt(offset) } : undefined;
  }

  /**
   * memfd_create(2) through the session: the kernel's fd, paired with an
   * empty file of the model (its pages are what MAP_SHARED mappings and
   * IOMMU_IOAS_MAP_FILE of it share). Close it with `sys.close`.
   */
  memfdCreate(name: string, flags: number): number {
    const fd = sys().memfdCreate(name, flags);
    // Model-only mode pairs it too: the real memfd backs the real mappings, the model's file stands in for it in calls.
    if (fd < 0 || !(this.checking || this.mode === 'model')) return fd;
    this.fdMap.set(fd, this.modelSys.memfdCreate(flags));
    return fd;
  }

  /** ftruncate(2) of a memfd from memfdCreate: the model's file takes the new size when the kernel's did. */
  ftruncate(fd: number, length: number): number {
    const r = sys().ftruncate(fd, length);
    const mfd = this.fdMap.get(fd);
    if (r === 0 && mfd !== undefined) this.modelSys.ftruncate(mfd, BigInt(length));
    return r;
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
   * Says that an fd's model no longer mirrors the kernel, for something the
   * model cannot know: from here on its calls run on the kernel alone and
   * count as unchecked under this reason, until it closes. The reason must
   * be on the list (unchecked.ts).
   */
  desync(context: { readonly fd: number }, reason: string): void {
    if (!this.checking) return;
    if (!isListedReason(reason)) throw new UncheckedCallError(`fd ${context.fd}`, reason, 'desync');
    this.desynced.set(context.fd, reason);
  }

  /** The bytes at a user address, from a mapping made through this session. */
  readUser(address: bigint, length: number): Uint8Array {
    for (const m of this.mappings) {
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
    if (r === 0) this.model.memory.map(mapping.address + BigInt(offset), BigInt(length), prot, (flags & MAP_SHARED) !== 0, this.#memfdOf(fd, fileOffset));
    return r;
  }

  munmap(mapping: Mapping, offset = 0, length = mapping.length - offset): number {
    const r = sys().munmap(mapping, offset, length);
    if (r === 0) this.model.memory.unmap(mapping.address + BigInt(offset), BigInt(length));
    if (r === 0 && offset === 0 && length === mapping.length) this.mappings.delete(mapping);
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

  #withModelContext(iommufd: IommuFd): LockstepIommufd {
    const self = this;
    Object.defineProperty(iommufd, 'modelContext', {
      get(): IommufdModel | null {
        if (iommufd.closed) return null;
        const mfd = self.mode === 'model' ? iommufd.fd : self.fdMap.get(iommufd.fd);
        const f = mfd === undefined ? undefined : self.modelSys.file(mfd);
        return f?.kind === 'iommufd' ? f.ctx : null;
      },
    });
    return iommufd as LockstepIommufd;
  }

  /** /dev/iommu through the session: the typed client, every call checked. */
  openIommufd(opts: { sys?: SysCore } = {}): LockstepIommufd {
    const { errno, iommufd } = this.tryOpenIommufd(opts);
    if (!iommufd) throw new Error(`cannot open /dev/iommu: errno ${errno}`);
    return iommufd;
  }

  /**
   * openIommufd, except that an open() that failed (by fault injection,
   * from a fault injector's core in `opts.sys`) gives its errno instead of
   * throwing: nothing was made, and the accounting was compared.
   */
  tryOpenIommufd(opts: { sys?: SysCore } = {}): { errno: number; iommufd: LockstepIommufd | null } {
    const s = opts.sys ? this.sysOver(opts.sys) : this.sys;
    const opened = IommuFd.open(s);
    if (!opened.iommufd) return { errno: opened.errno, iommufd: null };
    return { errno: 0, iommufd: this.#withModelContext(opened.iommufd) };
  }

  /** The VFIO container ioctls on an iommufd opened by openIommufd (iommufd's vfio compat): the same fd. */
  compatOn(iommufd: IommuFd): VfioContainer {
    return VfioContainer.compatOn(iommufd);
  }

  /** The real VFIO container (/dev/vfio/vfio, type1), through the session. */
  openContainer(): VfioContainer {
    const opened = VfioContainer.open(this.sys);
    if (!opened.container) throw new Error(`cannot open /dev/vfio/vfio: errno ${opened.errno}`);
    return opened.container;
  }

  /** A VFIO group through the session; setContainer takes the container object (a type1 container or an iommufd). */
  openGroup(groupId: number): LockstepGroup {
    const opened = VfioGroup.open(groupId, this.sys);
    if (!opened.group) throw new Error(`cannot open /dev/vfio/${groupId}: errno ${opened.errno}`);
    const group = opened.group;
    const s = this.sys;
    return {
      getStatus: () => group.getStatus(),
      setContainer: (c: DeviceFile) => group.setContainer(c.fd),
      unsetContainer: () => group.unsetContainer(),
      getDeviceFd: (name: string) => group.getDeviceFd(name),
      closeDevice: (deviceFd: number) => {
        const ret = s.close(deviceFd);
        return { errno: ret < 0 ? -ret : 0 };
      },
      close: () => group.close(),
    };
  }

  // ------------------------------------------------------------ fork

  /** Forked children the model holds, by pid (fork_present keeps one until forkRelease). */
  readonly #children = new Map<number, ModelProcess>();

  /**
   * Sys.forkIoctl in lockstep: a forked child issues one ioctl on `fd` with a
   * copy of `arg` (the kernel's result and bytes come back into `arg`), and
   * the model runs it as one more process, sharing the parent's memory. A
   * child that exits at once (keepAlive false, fork_gone) takes its mm with
   * it: what it mapped can no longer be pinned from it. Returns the child's
   * pid and ioctl result, or a negative errno when fork failed.
   */
  forkIoctl(fd: number, request: number, arg: Uint8Array, keepAlive: boolean): { pid: number; ret: number } | number {
    const child = this.model.fork();
    let pid = 0;
    const run = () => {
      const r = sys().forkIoctl(fd, request, arg.slice(), keepAlive);
      if (typeof r !== 'number') pid = r.pid;
      return r;
    };
    let ret: number;
    if (this.sys instanceof LockstepSys) {
      ret = this.sys.childIoctl(fd, request, arg, child, run);
    } else {
      const r = run();
      if (typeof r === 'number') return r;
      arg.set(r.out.subarray(0, arg.length));
      ret = r.ret;
    }
    if (keepAlive) this.#children.set(pid, child);
    else child.exited = true;
    // A child that stays alive shows its own mm's counters: after an ioctl that can move them
    // (IOMMU_IOAS_CHANGE_PROCESS charges the caller), they must be the model child's. A fresh mm
    // starts at 0 (mm_init), so no baseline is needed.
    if (keepAlive && this.checking && ret >= 0) this.#checkChildAccounting(pid, child, `ioctl 0x${(request >>> 0).toString(16)} from the forked child ${pid}`);
    return { pid, ret };
  }

  /**
   * Compares a kept-alive child's VmPin and VmLck with the model child's now: after a call of another
   * process that can move them (this process unmapping a type1 mapping the child made, whose pages are
   * charged to the child's mm). `after` names that call.
   */
  checkForkedChild(pid: number, after: string): void {
    const child = this.#children.get(pid);
    if (!child) throw new Error(`no forked child ${pid} is kept alive`);
    if (this.checking) this.#checkChildAccounting(pid, child, `${after} (the forked child ${pid}'s counters)`);
  }

  #checkChildAccounting(pid: number, child: ModelProcess, what: string): void {
    const { pin, lck } = vmPinAndLckKiBOf(pid);
    const diffs: FieldDifference[] = [];
    if (BigInt(pin) / 4n !== child.mmPinnedVm) diffs.push({ path: `VmPin of the child ${pid} (pages)`, kernel: BigInt(pin) / 4n, model: child.mmPinnedVm });
    if (BigInt(lck) / 4n !== child.mmLockedVm) diffs.push({ path: `VmLck of the child ${pid} (pages)`, kernel: BigInt(lck) / 4n, model: child.mmLockedVm });
    if (!diffs.length) return;
    const lines = [`lockstep divergence in ${what}`, ...diffs.map((d) => `  ${d.path}  kernel ${show(d.kernel)}  model ${show(d.model)}`)];
    throw new DivergenceError(what, diffs, lines.join('\n'));
  }

  /** Lets a kept-alive child exit and reaps it: its exit status, or -errno. */
  forkRelease(pid: number): number {
    const r = sys().forkRelease(pid);
    const child = this.#children.get(pid);
    if (child) child.exited = true;
    this.#children.delete(pid);
    return r;
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
   * buffer retried smaller) runs on the model and is compared as usual.
   * Close always runs on the model: the fd is gone whatever close() returns,
   * and ->release has no way to fail.
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

  /** Throws a DivergenceError if VmPin or VmLck differ from the model's counters now. */
  checkAccounting(what: string): void {
    if (!this.checking) return;
    const diffs = this.accountingDifferences();
    if (diffs.length > 0) {
      const lines = [`lockstep divergence in ${what}`, ...diffs.map((d) => `  ${d.path}  kernel ${show(d.kernel)}  model ${show(d.model)}`)];
      lines.push('  operations that led here (oldest first):', ...this.#history.slice(-15).map((h) => `    ${h.call}${h.args ? ` ${h.args()}` : ''} -> kernel ${showRet(h.kernel)}${h.model !== undefined ? ` | model ${showRet(h.model)}` : ''}`));
      throw new DivergenceError(what, diffs, lines.join('\n'));
    }
  }

  /** VmPin and VmLck, as /proc/self/status shows them, against the model's counters. */
  accountingDifferences(): FieldDifference[] {
    const out: FieldDifference[] = [];
    const t = process.hrtime.bigint();
    const now = this.#readAccounting();
    const stats = lockstepStats();
    stats.accountingReads = (stats.accountingReads ?? 0) + 1;
    stats.accountingNs = (stats.accountingNs ?? 0) + Number(process.hrtime.bigint() - t);
    const pin = now.pin - this.#basePin;
    const lck = now.lck - this.#baseLck;
    if (pin !== this.model.mmPinnedVm) out.push({ path: 'VmPin (pages, since the session began)', kernel: pin, model: this.model.mmPinnedVm });
    if (lck !== this.model.mmLockedVm) out.push({ path: 'VmLck (pages, since the session began)', kernel: lck, model: this.model.mmLockedVm });
    return out;
  }
}

export { ModelCannotAnswer, UNCHECKED_REASONS };
