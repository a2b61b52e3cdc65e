// The errno values the model returns (x86-64 Linux, include/uapi/asm-generic/errno*.h).
// Kept as literal numbers: the model is an executable spec and must not depend
// on the host's libc tables.
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EBADF = 9;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOTTY = 25;
export const ENOSPC = 28;
export const EDEADLK = 35;
export const EBADE = 52;
export const EBADFD = 77;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const EOVERFLOW = 75;
export const E2BIG = 7;
// vIOMMU (7.x)
export const ENXIO = 6;
export const ESPIPE = 29;
export const ERANGE = 34;
