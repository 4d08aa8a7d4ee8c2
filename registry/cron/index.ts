// Scheduled jobs in the registry: their REST routes, the schedule parser (croner), the scheduler every registry runs.
export { cronRoutes, MAX_CRONS_PER_APP, type CronRoutesOptions } from './cron-routes.js';
export { CronSchedule } from './cron-schedule.js';
export { CronScheduler, DEFAULT_CRON_LATE_MS, DEFAULT_CRON_PASS_MS, type CronSchedulerOptions } from './cron-scheduler.js';
