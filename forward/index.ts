// Forwarding, shared by the proxy and the balancer: what they may use of it.
export type { ClientRequest, ClientResponse, HeadOnlyRequest } from './client-exchange.js';
export { answerError } from './error-answer.js';
export { requestHeaders, upgradeHeaderLines, type ForwardedOptions } from './forwarded-headers.js';
export { connectionTokens, DRAINING_HEADER, HOP_HEADER, isFieldValue, isToken } from './http-headers.js';
export { RequestMetrics, totalMetricsText, type AppMetricsSnapshot, type RequestMetricsOptions } from './request-metrics.js';
export { forwardTarget, parseRequestTarget, stripPrefix, type RequestTarget } from './request-path.js';
export { DEFAULT_RETRY_POLICY, retryDecision, type Attempts, type RetryDecision, type RetryPolicy } from './retry-rule.js';
export { retryingExchange, type AttemptTarget, type RetryingExchangeOptions } from './retrying-exchange.js';
export { proxyOrigin, RouteSync, type RouteSyncOptions } from './route-sync.js';
export { RouteTable, requestHostName, wildcardOf, type TableChanges, type AppRouteSettings, type DomainRouteSettings, type Route, type RoutedInstance, type RunningInstance } from './route-table.js';
export { refuseUpgrade, tunnelUpgrade, type TunnelOptions } from './upgrade-tunnel.js';
export { CUT_AT_APP, forwardExchange, upstreamAgent, upstreamPool, type ExchangeFailure, type ExchangeOptions } from './upstream-exchange.js';
export { UpstreamHealth, type AttemptBook, type UpstreamHealthOptions, type UpstreamState } from './upstream-health.js';
