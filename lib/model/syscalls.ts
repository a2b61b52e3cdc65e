// The model as a process's system calls: open, close and ioctl(fd, request,
// argument) answered as the kernel answers them, from an fd table of model
// files. /dev/iommu goes through main.c's dispatch (iommufd/main.ts), the
// VFIO container, group and device fds through vfio/. The semantic models
// (IommufdModel, Type1ContainerModel, Type1GroupModel) sit behind them.
import * as U from '../uapi/index.ts';
import { EBADF } from './errno.ts';
import { IommufdModel } from './iommufd.ts';
import { IOMMUFD_IOCTL_TABLE, iommufdFopsIoctl, iommufdIoctlShape, vfioIoctlName, type IommufdIoctlTable, type IoctlShape } from './iommufd/main.ts';
import type { IommufdFds } from './iommufd/ucmd.ts';
import type { DmaBuf } from './dma-buf.ts';
import type { MapFileTarget } from './iommufd.ts';
import { ModelProcess, ShmemFile } from './process.ts';
import type { Type1ContainerModel, Type1GroupModel } from './type1.ts';
import { ModelCannotAnswer, type IoctlArgument } from './uaccess.ts';
import { vfioContainerIoctl } from './vfio/container.ts';
import { vfioGroupIoctl, type GroupContainerTarget, type GroupIoctlContext } from './vfio/group.ts';

export type ModelFile =
  | { kind: 'iommufd'; ctx: IommufdModel }
  /** An access, fault or vEVENTQ fd of a context, by the context's own number for it. */
  | { kind: 'access' | 'fault' | 'veventq'; ctx: IommufdModel; local: number }
  | { kind: 'type1'; container: Type1ContainerModel }
  | { kind: 'group'; group: Type1GroupModel }
  | { kind: 'device'; group: Type1GroupModel; local: number }
  // memfds (IOMMU_IOAS_MAP_FILE) and the selftest's dma-bufs
  | { kind: 'memfd'; file: ShmemFile }
  | { kind: 'dmabuf'; dmabuf: DmaBuf };

/** The machine the model runs on: how each device file's model is made (lib/lockstep/models.ts reads it from sysfs). */
export interface ModelPlatform {
  iommufd?(process: ModelProcess): IommufdModel;
  type1?(process: ModelProcess): Type1ContainerModel;
  group?(groupId: number): Type1GroupModel;
}

/** memfd_create's MFD_HUGETLB (include/uapi/linux/memfd.h). */
const MFD_HUGETLB = 0x0004;

/** The fds the model hands out start here, far from the small numbers a real process has open. */
const FIRST_FD = 10_000;

export class ModelSyscalls implements IommufdFds, GroupIoctlContext {
  readonly files = new Map<number, ModelFile>();
  #nextFd: number;
  readonly #firstFd: number;
  /** The /dev/iommu ioctl table (a test may change one rule). */
  iommufdTable: IommufdIoctlTable = IOMMUFD_IOCTL_TABLE;

  constructor(
    readonly process: ModelProcess = new ModelProcess(),
    readonly platform: ModelPlatform = {},
    firstFd = FIRST_FD,
  ) {
    this.#nextFd = firstFd;
    this.#firstFd = firstFd;
  }

  #install(file: ModelFile): number {
    const fd = this.#nextFd++;
    this.files.set(fd, file);
    return fd;
  }

  file(fd: number): ModelFile | undefined {
    return this.files.get(fd);
  }

  /** A mark in the fd numbering: fdsInstalledSince(mark) lists the files installed after it and still open. */
  fdMark(): number {
    return this.#nextFd;
  }

  fdsInstalledSince(mark: number): number[] {
    const out: number[] = [];
    for (let fd = mark; fd < this.#nextFd; fd++) if (this.files.has(fd)) out.push(fd);
    return out;
  }

  // ------------------------------------------------------------ open, close

  /** open(2) of a device file: the fd, or throws ModelCannotAnswer for a file the model does not know. */
  open(path: string): number {
    if (path === '/dev/iommu') return this.#install({ kind: 'iommufd', ctx: this.platform.iommufd?.(this.process) ?? new IommufdModel(this.process) });
    if (path === '/dev/vfio/vfio' && this.platform.type1) return this.#install({ kind: 'type1', container: this.platform.type1(this.process) });
    const group = /^\/dev\/vfio\/(\d+)$/.exec(path);
    if (group && this.platform.group) return this.#install({ kind: 'group', group: this.platform.group(Number(group[1])) });
    throw new ModelCannotAnswer('open of a file the model does not know', `open(${JSON.stringify(path)})`);
  }

  /** close(2): a file's ->release cannot fail; the fd is gone whatever happens. */
  close(fd: number): number {
    const f = this.files.get(fd);
    if (!f) return -EBADF;
    this.files.delete(fd);
    switch (f.kind) {
      case 'iommufd': return -f.ctx.close().errno || 0;
      case 'access':
      case 'fault':
      case 'veventq': return -f.ctx.closeAccess(f.local).errno || 0;
      case 'type1': return -f.container.close().errno || 0;
      case 'group': return -f.group.close().errno || 0;
      case 'device': return -f.group.closeDevice(f.local).errno || 0;
      // The file lives on while a mapping or an iopt_pages holds it (get_file).
      case 'memfd':
      case 'dmabuf': return 0;
    }
  }

  // ------------------------------------------------------------ read, write, poll (event queue fds), mmap (vIOMMU, 7.x)

  /** read(2) of `count` bytes: the result and the bytes read (a fault or vEVENTQ fd; others the model does not answer). */
  read(fd: number, count: number): { ret: number; bytes: Uint8Array } {
    const f = this.files.get(fd);
    if (!f) return { ret: -EBADF, bytes: new Uint8Array(0) };
    if (f.kind !== 'veventq' && f.kind !== 'fault') throw new ModelCannotAnswer(`read of a ${f.kind} fd`);
    return f.ctx.readFile(f.local, count);
  }

  /** write(2) of `bytes`: the result (a fault fd's page responses; a vEVENTQ fd has no write). */
  write(fd: number, bytes: Uint8Array): number {
    const f = this.files.get(fd);
    if (!f) return -EBADF;
    if (f.kind !== 'veventq' && f.kind !== 'fault') throw new ModelCannotAnswer(`write of a ${f.kind} fd`);
    return f.ctx.writeFile(f.local, bytes);
  }

  /** poll(2) of one fd: its revents. */
  poll(fd: number, events: number): number {
    const f = this.files.get(fd);
    if (!f) return 0x20; // POLLNVAL
    if (f.kind !== 'veventq' && f.kind !== 'fault') throw new ModelCannotAnswer(`poll of a ${f.kind} fd`);
    return f.ctx.pollFile(f.local, events);
  }

  /** mmap(2) of an iommufd (its driver regions): a handle for munmap, or -errno. */
  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint): { ret: number; handle: { ctx: IommufdModel; handle: object } | null } {
    const f = this.files.get(fd);
    if (!f) return { ret: -EBADF, handle: null };
    if (f.kind !== 'iommufd') throw new ModelCannotAnswer(`mmap of a ${f.kind} fd`);
    const MAP_SHARED = 0x01;
    const MAP_SHARED_VALIDATE = 0x03;
    const PROT_EXEC = 0x4;
    const r = f.ctx.mmap({ length, shared: (flags & MAP_SHARED_VALIDATE) === MAP_SHARED || (flags & MAP_SHARED_VALIDATE) === MAP_SHARED_VALIDATE, exec: (prot & PROT_EXEC) !== 0, offset });
    return r.errno ? { ret: -r.errno, handle: null } : { ret: 0, handle: { ctx: f.ctx, handle: r.handle! } };
  }

  /** munmap(2) of a whole mapping mmap made on an iommufd. */
  munmap(handle: { ctx: IommufdModel; handle: object }): void {
    handle.ctx.munmap(handle.handle);
  }

  // ------------------------------------------------------------ memfds (IOMMU_IOAS_MAP_FILE)

  /** memfd_create(2) (MFD_HUGETLB: a hugetlbfs file): an empty file. */
  memfdCreate(flags: number): number {
    return this.#install({ kind: 'memfd', file: new ShmemFile(this.process.memory, (flags & MFD_HUGETLB) !== 0) });
  }

  /** ftruncate(2) of a memfd the kernel truncated: the model's file follows. */
  ftruncate(fd: number, length: bigint): void {
    const f = this.files.get(fd);
    if (f?.kind !== 'memfd') throw new ModelCannotAnswer('ftruncate of a file the model does not know', `fd ${fd}`);
    f.file.truncate(length);
  }

  // ------------------------------------------------------------ ioctl

  /** ioctl(2) issued by another process than the fd's opener (a forked child holding the same file). */
  ioctlAs(process: ModelProcess, fd: number, request: number, arg: IoctlArgument): number {
    const f = this.files.get(fd);
    if (f?.kind === 'type1') return f.container.asProcess(process, () => this.ioctl(fd, request, arg));
    if (f?.kind !== 'iommufd') throw new ModelCannotAnswer('an ioctl from a forked child on other than /dev/iommu');
    return f.ctx.asProcess(process, () => this.ioctl(fd, request, arg));
  }

  ioctl(fd: number, request: number, arg: IoctlArgument): number {
    const f = this.files.get(fd);
    if (!f) return -EBADF;
    switch (f.kind) {
      case 'iommufd': return iommufdFopsIoctl(f.ctx, this, request, arg, arg.user, this.iommufdTable);
      case 'type1': return vfioContainerIoctl(f.container, request, arg);
      case 'group': return vfioGroupIoctl(f.group, request, arg, this);
      case 'access': throw new ModelCannotAnswer('ioctl on a selftest access fd (it has none)');
      case 'fault': throw new ModelCannotAnswer('ioctl on a fault fd (it has none)');
      case 'veventq': return -25; // ENOTTY: a vEVENTQ file has no ioctl
      case 'device': throw new ModelCannotAnswer('VFIO device ioctls (vfio-pci is not modelled)', vfioIoctlName(request));
      case 'memfd': throw new ModelCannotAnswer('ioctl on a memfd (it has none the model knows)');
      case 'dmabuf': throw new ModelCannotAnswer('ioctl on a dma-buf (its DMA_BUF_IOCTL_* are not modelled)');
    }
  }

  /** What lockstep must know of an ioctl besides its bytes: its name and layout, fd fields, whether it can pin. */
  shape(fd: number, request: number, bytes: Uint8Array | null): IoctlShape {
    const f = this.files.get(fd);
    if (f?.kind === 'iommufd') return iommufdIoctlShape(request, bytes, this.iommufdTable);
    const none: IoctlShape['fdIn'] = [];
    const name = vfioIoctlName(request);
    if (f?.kind === 'type1') {
      const layout = request === U.VFIO_IOMMU_MAP_DMA ? U.vfio_iommu_type1_dma_map : request === U.VFIO_IOMMU_UNMAP_DMA ? U.vfio_iommu_type1_dma_unmap : request === U.VFIO_IOMMU_GET_INFO ? U.vfio_iommu_type1_info : null;
      return { name, layout, fdIn: none, fdOut: none, accounting: request === U.VFIO_IOMMU_MAP_DMA || request === U.VFIO_IOMMU_UNMAP_DMA || request === U.VFIO_SET_IOMMU };
    }
    if (f?.kind === 'group') {
      return {
        name,
        layout: request === U.VFIO_GROUP_GET_STATUS ? U.vfio_group_status : null,
        fdIn: request === U.VFIO_GROUP_SET_CONTAINER ? [{ offset: 0, size: 4 }] : none,
        fdOut: none,
        // SET_CONTAINER attaches to a set container; GET_DEVICE_FD through an iommufd attaches the device (and pins).
        accounting: request === U.VFIO_GROUP_SET_CONTAINER || request === U.VFIO_GROUP_UNSET_CONTAINER || request === U.VFIO_GROUP_GET_DEVICE_FD,
      };
    }
    return { name, layout: null, fdIn: none, fdOut: none, accounting: false };
  }

  /** Whether an ioctl returns a new fd (VFIO_GROUP_GET_DEVICE_FD, IOMMU_TEST_OP_DMABUF_GET). */
  returnsFd(fd: number, request: number, bytes: Uint8Array | null = null): boolean {
    const f = this.files.get(fd);
    if (f?.kind === 'iommufd') return !!iommufdIoctlShape(request, bytes, this.iommufdTable).returnsFd;
    return f?.kind === 'group' && request === U.VFIO_GROUP_GET_DEVICE_FD;
  }

  // ------------------------------------------------------------ the fd table, as the handlers see it

  accessOf(ctx: IommufdModel, fd: number): number | null {
    const f = this.files.get(fd);
    if (!f) return null;
    if (f.kind === 'access' && f.ctx === ctx) return f.local;
    if (f.kind === 'access') throw new ModelCannotAnswer('an access fd of another iommufd context');
    return null;
  }

  install(ctx: IommufdModel, kind: 'access' | 'fault' | 'veventq', localFd: number): number {
    return this.#install({ kind, ctx, local: localFd });
  }

  target(fd: number): GroupContainerTarget {
    const f = this.files.get(fd);
    if (!f) return { kind: 'bad-fd' };
    if (f.kind === 'type1') return { kind: 'type1', container: f.container };
    if (f.kind === 'iommufd') return { kind: 'iommufd', ctx: f.ctx };
    return { kind: 'other-file' };
  }

  /**
   * What an fd is, as dma_buf_get and fget find it: a negative or closed
   * number is no file; a number below the model's own range is a kernel fd
   * lockstep did not pair with a model file, which the model cannot answer.
   */
  fileOf(fd: number): MapFileTarget {
    const f = this.files.get(fd);
    if (f?.kind === 'memfd') return { kind: 'memfd', file: f.file };
    if (f?.kind === 'dmabuf') return { kind: 'dmabuf', dmabuf: f.dmabuf };
    if (f) return { kind: 'other' };
    if (fd < 0 || fd >= this.#firstFd) return null;
    throw new ModelCannotAnswer('an fd the model did not open', `fd ${fd} passed to the kernel`);
  }

  installDmabuf(dmabuf: DmaBuf): number {
    return this.#install({ kind: 'dmabuf', dmabuf });
  }

  installDevice(group: Type1GroupModel, localFd: number): number {
    return this.#install({ kind: 'device', group, local: localFd });
  }
}
