// One-off runs in the registry: their REST routes, the interactive terminal's WebSocket, the sweep of runs whose machine died.
export { runRoutes, currentRelease, runCommandSchema, runTimeoutSchema, type RunRoutesOptions } from './run-routes.js';
export { RunSweeper, DEFAULT_RUN_SWEEP_MS, DEFAULT_RUN_START_TIMEOUT_MS, type RunSweeperOptions } from './run-sweeper.js';
export { runTerminal, type RunTerminalOptions } from './run-terminal.js';
