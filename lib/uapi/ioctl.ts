// ioctl request numbers, encoded exactly as include/uapi/asm-generic/ioctl.h
// does on x86_64 (which uses the generic layout):
//
//   bits 31..30 dir | 29..16 size | 15..8 type | 7..0 nr
//
// Results are unsigned 32-bit numbers (C's `unsigned int`): JavaScript's `|`
// and `<<` yield signed int32, so every result goes through `>>> 0`.
// The constant names are the header's, so the layout check can compare them
// with the C macros.

export const _IOC_NRBITS = 8;
export const _IOC_TYPEBITS = 8;
export const _IOC_SIZEBITS = 14;
export const _IOC_DIRBITS = 2;

export const _IOC_NRMASK = (1 << _IOC_NRBITS) - 1;
export const _IOC_TYPEMASK = (1 << _IOC_TYPEBITS) - 1;
export const _IOC_SIZEMASK = (1 << _IOC_SIZEBITS) - 1;
export const _IOC_DIRMASK = (1 << _IOC_DIRBITS) - 1;

export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;

export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;

/** An ioctl type: a one-character string as in C (`';'`), or its code. */
export type IoctlType = string | number;

/** A size for _IOR/_IOW/_IOWR: a byte count, or a layout (its sizeof is used, as C's sizeof(type)). */
export type IoctlSize = number | { readonly sizeof: number };

function field(what: string, value: number, mask: number): number {
  if (!Number.isInteger(value) || value < 0 || value > mask) {
    throw new RangeError(`ioctl ${what} ${value} does not fit in ${Math.log2(mask + 1)} bits`);
  }
  return value;
}

function typeCode(type: IoctlType): number {
  if (typeof type === 'number') return type;
  if (type.length !== 1) throw new RangeError(`ioctl type must be one character, got ${JSON.stringify(type)}`);
  return type.charCodeAt(0);
}

function sizeOf(size: IoctlSize): number {
  return typeof size === 'number' ? size : size.sizeof;
}

export function _IOC(dir: number, type: IoctlType, nr: number, size: number): number {
  return (
    ((field('dir', dir, _IOC_DIRMASK) << _IOC_DIRSHIFT) |
      (field('type', typeCode(type), _IOC_TYPEMASK) << _IOC_TYPESHIFT) |
      (field('nr', nr, _IOC_NRMASK) << _IOC_NRSHIFT) |
      (field('size', size, _IOC_SIZEMASK) << _IOC_SIZESHIFT)) >>>
    0
  );
}

export function _IO(type: IoctlType, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}

export function _IOR(type: IoctlType, nr: number, size: IoctlSize): number {
  return _IOC(_IOC_READ, type, nr, sizeOf(size));
}

export function _IOW(type: IoctlType, nr: number, size: IoctlSize): number {
  return _IOC(_IOC_WRITE, type, nr, sizeOf(size));
}

export function _IOWR(type: IoctlType, nr: number, size: IoctlSize): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type, nr, sizeOf(size));
}

export function _IOC_DIR(request: number): number {
  return (request >>> _IOC_DIRSHIFT) & _IOC_DIRMASK;
}

export function _IOC_TYPE(request: number): number {
  return (request >>> _IOC_TYPESHIFT) & _IOC_TYPEMASK;
}

export function _IOC_NR(request: number): number {
  return (request >>> _IOC_NRSHIFT) & _IOC_NRMASK;
}

export function _IOC_SIZE(request: number): number {
  return (request >>> _IOC_SIZESHIFT) & _IOC_SIZEMASK;
}
