// A lock per cache entry, so that any number of runs on one machine share the
// cache: flock(1) from util-linux holds an exclusive flock(2) on ENTRY.lock for
// as long as its child reads our pipe. The kernel drops the lock when that
// process exits, and it exits when we close the pipe or when we die (the pipe
// closes with us): a killed run never leaves a stale lock behind.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SetupError } from './setup-error.ts';

export interface HeldLock {
  release(): Promise<void>;
}

let flockChecked = false;

function checkFlock(): void {
  if (flockChecked) return;
  if (spawnSync('flock', ['--version']).status !== 0) throw new SetupError('flock (util-linux) is missing: the kernel cache needs it', 'apt-get install util-linux');
  flockChecked = true;
}

/** Waits for the exclusive lock on `lockFile`, saying so when another run holds it. */
export function acquireLock(lockFile: string, what: string, log: (line: string) => void = () => {}): Promise<HeldLock> {
  checkFlock();
  mkdirSync(dirname(lockFile), { recursive: true });
  return new Promise((resolveLock, reject) => {
    const child = spawn('flock', ['--exclusive', lockFile, '-c', 'echo locked && exec cat > /dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let held = false;
    const waiting = setTimeout(() => log(`waiting for another run that holds the lock on ${what} (${lockFile})`), 1000);
    const exited = new Promise<void>((done) => child.once('close', () => done()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      if (held || !c.toString().includes('locked')) return;
      held = true;
      clearTimeout(waiting);
      resolveLock({
        release: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
    child.once('error', (err) => {
      clearTimeout(waiting);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(waiting);
      if (!held) reject(new Error(`flock ${lockFile} exited with ${code} before taking the lock: ${stderr.trim()}`));
    });
  });
}

/** Runs `fn` holding the lock on `lockFile`; releases it however `fn` ends. */
export async function withLock<T>(lockFile: string, what: string, log: (line: string) => void, fn: () => Promise<T> | T): Promise<T> {
  const lock = await acquireLock(lockFile, what, log);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
