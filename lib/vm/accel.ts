// KVM or TCG. /dev/kvm existing proves nothing (on some hosts it is there but
// a guest hangs after "Booting from ROM"), so KVM is used only when the CPU
// advertises vmx/svm, /dev/kvm opens, and a probe guest really ran under it.
// The probe's verdict is cached per host boot.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from '../kbuild/cache.ts';

export type Accel = 'kvm' | 'tcg';

export interface AccelChoice {
  accel: Accel;
  why: string;
}

export function cpuHasVirtualisation(): boolean {
  try {
    return /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

export function kvmOpens(): boolean {
  if (!existsSync('/dev/kvm')) return false;
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

/** Boots the guest kernel under KVM with a 20 s limit and watches for its first console line. */
function probeKvm(image: string): Promise<boolean> {
  return new Promise((done) => {
    const dir = mkdtempSync(join(tmpdir(), 'kvm-probe-'));
    const child = spawn(
      'qemu-system-x86_64',
      ['-accel', 'kvm', '-cpu', 'host', '-m', '256M', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio',
        '-kernel', image, '-append', 'console=ttyS0 panic=-1 init=/bin/false'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      done(ok);
    };
    const timer = setTimeout(() => finish(false), 20000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      // The kernel got as far as mounting root or running init: the CPU runs guest code.
      if (/Kernel panic|Run \/bin\/false|VFS:|Freeing unused kernel/.test(out)) finish(true);
    });
    child.on('close', () => finish(/Linux version/.test(out)));
    child.on('error', () => finish(false));
  });
}

export async function chooseAccel(image: string, requested: 'auto' | Accel = 'auto'): Promise<AccelChoice> {
  if (requested === 'tcg') return { accel: 'tcg', why: 'requested' };
  if (requested === 'kvm') return { accel: 'kvm', why: 'requested' };
  if (!cpuHasVirtualisation()) return { accel: 'tcg', why: 'the CPU advertises no vmx/svm' };
  if (!kvmOpens()) return { accel: 'tcg', why: '/dev/kvm missing or not openable' };
  let bootId = 'unknown';
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch { /* keep unknown */ }
  const verdictFile = join(cacheDir('accel'), `kvm-${bootId}`);
  if (existsSync(verdictFile)) {
    const ok = readFileSync(verdictFile, 'utf8') === 'ok';
    return ok ? { accel: 'kvm', why: 'KVM probe passed (cached)' } : { accel: 'tcg', why: 'a guest does not run under KVM here (cached probe)' };
  }
  const ok = await probeKvm(image);
  writeFileSync(verdictFile, ok ? 'ok' : 'hangs');
  return ok ? { accel: 'kvm', why: 'KVM probe passed' } : { accel: 'tcg', why: 'a probe guest did not run under KVM within 20 s' };
}
