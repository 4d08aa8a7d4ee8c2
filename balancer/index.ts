// The balancer's surface for the rest of berth: the daemon (its options and start) and the primary
// that runs it in workers. Certificates, TLS and the forwarding to proxies are its own business.
export { BALANCER_OPTIONS, DEFAULT_HTTPS_PORT, MIN_DEFAULT_BALANCER_WORKERS, startBalancer, type BalancerConfig, type BalancerDaemon } from './balancer-daemon.js';
export { startBalancerPrimary } from './balancer-primary.js';
