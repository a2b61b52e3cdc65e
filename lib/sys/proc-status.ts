// What /proc/self/status tells of this process's memory accounting: VmPin is
// mm->pinned_vm, VmLck mm->locked_vm, both printed in kB. The lockstep check,
// the audit's targets and the accounting suite all read them here.
//
// Lockstep reads them after every ioctl that can pin or unpin (the selftest
// mirror makes ~10^5 of them), so the file stays open and each read is one
// pread from offset 0 (seq_file regenerates the text) into a reused buffer,
// parsed in place, without a regular expression or a string of the file.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

let statusFd: number | null = null;
const buffer = Buffer.alloc(8192);

/** Reads /proc/self/status into `buffer` (from offset 0 of the open file): its length. */
function readStatus(): number {
  statusFd ??= openSync('/proc/self/status', 'r');
  try {
    return readSync(statusFd, buffer, 0, buffer.length, 0);
  } catch (e) {
    // A forked child (or an fd closed behind our back) must not keep a stale fd.
    closeSync(statusFd);
    statusFd = openSync('/proc/self/status', 'r');
    void e;
    return readSync(statusFd, buffer, 0, buffer.length, 0);
  }
}

/** The kB value of a `Name:` line in the first `n` bytes of `bytes`, read in place (no string made of the whole file). */
function kbOfBytes(bytes: Buffer, n: number, key: Buffer, field: string): number {
  const at = bytes.indexOf(key);
  if (at < 0 || at + key.length > n) throw new Error(`/proc/self/status has no ${field} line`);
  let i = at + key.length;
  while (i < n && (bytes[i] === 32 || bytes[i] === 9)) i++;
  let v = 0;
  for (let c = bytes[i]!; i < n && c >= 48 && c <= 57; c = bytes[++i]!) v = v * 10 + (c - 48);
  return v;
}

function kbOf(status: string, field: string): number {
  const at = status.indexOf(`\n${field}:`);
  if (at < 0) throw new Error(`/proc/self/status has no ${field} line`);
  let i = at + field.length + 2;
  while (status.charCodeAt(i) === 32 || status.charCodeAt(i) === 9) i++;
  let v = 0;
  for (let c = status.charCodeAt(i); c >= 48 && c <= 57; c = status.charCodeAt(++i)) v = v * 10 + (c - 48);
  return v;
}

const VMPIN = Buffer.from('\nVmPin:', 'latin1');
const VMLCK = Buffer.from('\nVmLck:', 'latin1');

/** VmPin and VmLck in kB, from one read; throws if the kernel prints neither line (both exist since Linux 3.2). */
export function vmPinAndLckKiB(): { pin: number; lck: number } {
  const n = readStatus();
  // Bytes past n are an older read's: a line found only there is not in this one.
  return { pin: kbOfBytes(buffer, n, VMPIN, 'VmPin'), lck: kbOfBytes(buffer, n, VMLCK, 'VmLck') };
}

/** VmPin and VmLck in 4 KiB pages (x86-64's PAGE_SIZE), as the kernel counts pinned_vm and locked_vm. */
export function pinnedAndLockedPages(): { pin: bigint; lck: bigint } {
  const { pin, lck } = vmPinAndLckKiB();
  return { pin: BigInt(pin) / 4n, lck: BigInt(lck) / 4n };
}

/** VmPin and VmLck in kB of another process (/proc/<pid>/status, read once): a forked child's (get_vm_pinned(pid)). */
export function vmPinAndLckKiBOf(pid: number): { pin: number; lck: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  return { pin: kbOf(status, 'VmPin'), lck: kbOf(status, 'VmLck') };
}
