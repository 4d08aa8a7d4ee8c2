import type { Logger } from 'pino';
import type { AddonOperations } from './addon-operations.js';
import type { AddonStore, StoredAddon } from './store/index.js';

/** How often a registry looks for add-ons whose scheduled backup is due, at most. @default 5000 */
export const DEFAULT_ADDON_BACKUP_PASS_MS = 5000;

export interface AddonBackupSchedulerOptions {
  addons: AddonStore;
  operations: AddonOperations;
  /** Now on Redis's clock (the periods are slots of it, the same for every registry). */
  now: () => Promise<number>;
  logger: Logger;
  /** @default DEFAULT_ADDON_BACKUP_PASS_MS */
  passMs?: number;
}

/**
 * Takes add-ons' scheduled backups (berth addons:backup NAME --every 24h). Every registry runs
 * one, as the cron scheduler: each pass reads the add-ons, and for each whose period has begun
 * claims it with one script (claimAddonBackup: the period's slot of Redis's clock, taken once
 * across the cluster), and the registry that claimed it takes the backup. A backup that fails
 * (the add-on does not run) is logged and recorded with the add-on (addons:info shows it), and
 * not tried again before the next period: the period is spent either way.
 */
export class AddonBackupScheduler {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly passMs: number;

  constructor(private readonly o: AddonBackupSchedulerOptions) {
    this.passMs = o.passMs ?? DEFAULT_ADDON_BACKUP_PASS_MS;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.pass = this.pass.then(() => this.runPass());
    }, this.passMs);
  }

  /** One pass: claims and takes the backups due. */
  async runPass(): Promise<void> {
    if (this.closed) return;
    let due: StoredAddon[];
    try {
      const [addons, now] = await Promise.all([this.o.addons.list(), this.o.now()]);
      // Read first, claimed below: most passes claim nothing and run no script.
      due = addons.filter((a) => a.backupSchedule !== null && a.backupSchedule.slot < Math.floor(now / a.backupSchedule.everyMs));
    } catch (err) {
      this.o.logger.debug({ err: String(err) }, 'add-on backup pass could not read the add-ons: trying again next pass');
      return;
    }
    for (const addon of due) {
      if (this.closed) return;
      await this.backUp(addon).catch((err: unknown) => this.o.logger.warn({ err: String(err), addon: addon.name }, `the scheduled backup of ${addon.name} could not be claimed or recorded: the next pass tries again`));
    }
  }

  private async backUp(addon: StoredAddon): Promise<void> {
    const claim = await this.o.addons.claimScheduledBackup(addon);
    if (claim === undefined) return;
    // Recorded as tried when claimed: within the period it is for.
    const { at } = claim;
    try {
      const backup = await this.o.operations.backup(addon.name);
      await this.o.addons.recordScheduledBackup(addon, at, { backup: backup.id });
      this.o.logger.info({ addon: addon.name, backup: backup.id }, `took the scheduled backup ${backup.id} of ${addon.name}`);
    } catch (err) {
      const words = err instanceof Error ? err.message : String(err);
      await this.o.addons.recordScheduledBackup(addon, at, { error: words });
      this.o.logger.warn({ addon: addon.name, err: words }, `the scheduled backup of ${addon.name} failed: the next is at the next period (addons:info shows this one's error)`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.pass;
  }
}
