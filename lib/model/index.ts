// The reference model of iommufd (and its VFIO compat layer) in pure TypeScript.
export * from './errno.ts';
export * from './interval-tree.ts';
export * from './objects.ts';
export * from './pages.ts';
export * from './io-pagetable.ts';
export * from './mock.ts';
export * from './iommufd.ts';
export * from './vfio-compat.ts';
export { ModelProcess, UserMemory, PAGE_SIZE, PROT_READ, PROT_WRITE, type Credentials, type UserMapping, type UserPage } from './process.ts';
