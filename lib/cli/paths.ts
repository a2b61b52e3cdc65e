/** The package root (holds package.json), wherever the CLI is started from. */
export { PACKAGE_ROOT } from '../package-root.ts';
