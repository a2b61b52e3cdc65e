import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (holds package.json), wherever the CLI is started from. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
