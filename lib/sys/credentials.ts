// Who this process runs as, from Node alone (no addon): kbuild asks before it
// offers to apt-get, the suites before they skip "not root".
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
