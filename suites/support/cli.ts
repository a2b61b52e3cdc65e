// The command line that runs this tool, for tests that run it as a user would:
// the entry this process was started from when it is the tool's (the guest's
// bundled main.cjs, or bin/iommufd-conformance.js), else the package's bin.
import { basename, join } from 'node:path';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';

export function cliCommand(): string[] {
  const entry = process.argv[1];
  if (entry && ['main.cjs', 'iommufd-conformance.js', 'iommufd-conformance'].includes(basename(entry))) return [process.execPath, entry];
  return [process.execPath, join(PACKAGE_ROOT, 'bin', 'iommufd-conformance.js')];
}
