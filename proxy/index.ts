// The proxy's surface for the rest of berth: the daemon (its options and start) and the reports it
// answers on its own endpoints, which the CLI prints, the scaler reads and the hoster shares. The
// forwarding itself and the fast path are its own business.
export { DEFAULT_PROXY_PORT, PROXY_OPTIONS, startProxy, type ProxyConfig, type ProxyDaemon } from './proxy-daemon.js';
export type { CulpritReport, LoadReport } from './machine-report.js';
export type { ControlPlaneReport } from './redis-contact.js';
