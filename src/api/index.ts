export * from './common.js';
export * from './mesh.js';
export * from './nodeconfig.js';
export * from './resources.js';
export * from './tunnel.js';
