export { startScaler, SCALER_OPTIONS, type ScalerConfig, type ScalerDaemon } from './scaler-daemon.js';
export { Scaler, type ScalerOptions } from './scaler.js';
export { planScaling, type ScaleDecision, type ScaleCause, type PlanInput, type PlanOptions, type AutoscalePolicy } from './scaling-plan.js';
