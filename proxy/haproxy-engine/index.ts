// The HAProxy engine of the proxy (berth proxy --engine haproxy): what proxy-daemon.ts uses of it.
export { startHaproxyEngine, findHaproxy, type HaproxyEngine, type HaproxyEngineOptions } from './haproxy-engine.js';
