// The test files carried inside the guest's one-file bundle (lib/vm/guest-bundle.ts), by the path the
// manifest names them by: each one evaluates on demand, so that a run loads its profile's files
// without Node's module loader resolving, reading and linking one file per module over 9p.
export const bundledTestFiles = new Map<string, () => Promise<unknown>>();
