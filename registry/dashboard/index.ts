export { dashboardKeys, type DashboardKeys } from './dashboard-keys.js';
export { SessionStore, DEFAULT_SESSION_TTL_MS, type DashboardSession } from './session-store.js';
export { sessionAuthenticate, SESSION_COOKIE, CSRF_HEADER, DEFAULT_TRUSTED_PROXIES } from './session-auth.js';
export { dashboardRoutes, CONTENT_SECURITY_POLICY } from './dashboard-routes.js';
export { loadDashboardAssets, type DashboardAssets } from './dashboard-assets.js';
export { LoadHistory, DEFAULT_LOAD_SAMPLE_MS, LOAD_HISTORY_MS, type LoadSample } from './load-history.js';
export { loadHistoryRoutes } from './load-history-routes.js';
