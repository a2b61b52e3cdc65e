export * from './ioctl-call.ts';
export * from './iommufd.ts';
export * from './vfio.ts';
export * from './features.ts';
export * from './pci.ts';
export * from './fail-nth.ts';
export * from './fd-table.ts';
export * from './type1-end-wrap.ts';
