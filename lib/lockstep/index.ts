export * from './compare.ts';
export * from './session.ts';
export * from './stats.ts';
export * from './state.ts';
