import { defineScript } from './lua-scripts.js';
import { SCRIPT_FAILURE } from './script-errors.js';

/** The Lua scripts of add-ons (`scripts/<name>-<keys>.lua`), declared as script-declarations.ts declares the others. */

/** Replies the port given to the add-on. */
export const createAddon = defineScript<number>()({
  name: 'createAddon',
  keys: ['addon', 'addons', 'machineAddons', 'machineAddonPorts'],
  args: ['name', 'id', 'kind', 'machine', 'host', 'portFirst', 'portLast', 'memoryMb', 'password', 'createdBy'],
});

/** Replies {1, the variable the app had it as before, or ''}. */
export const attachAddon = defineScript<[number, string]>()({
  name: 'attachAddon',
  keys: ['addon', 'appAddons'],
  args: ['name', 'app', 'variable'],
});

/** Replies the variable it was attached as. */
export const detachAddon = defineScript<string>()({
  name: 'detachAddon',
  keys: ['addon', 'appAddons'],
  args: ['name', 'app'],
});

export const destroyAddon = defineScript<number>()({
  name: 'destroyAddon',
  keys: ['addon', 'addons', 'machineAddons', 'machineAddonPorts', 'machineAddonTrash'],
  args: ['name', 'machine'],
});

/** Replies {epoch, lease expiry}, or the answer that a live lease holds it. */
export const claimAddon = defineScript<[number, number] | number>()({
  name: 'claimAddon',
  keys: ['addon', 'epoch'],
  args: ['machine', 'leaseMs', 'id'],
  answers: [SCRIPT_FAILURE.addonHeld],
});

/** Replies the lease expiry (0 once released). */
export const reportAddon = defineScript<number>()({
  name: 'reportAddon',
  keys: ['addon'],
  args: ['machine', 'epoch', 'leaseMs', 'state', 'pid', 'detail', 'restarts'],
});

/** Replies the time of the measurement (ms, Redis clock). */
export const reportAddonUsage = defineScript<number>()({
  name: 'reportAddonUsage',
  keys: ['addon'],
  args: ['machine', 'epoch', 'bytes', 'connections', 'memoryBytes'],
});

/** Replies the add-on's port on its new machine. */
export const moveAddon = defineScript<number>()({
  name: 'moveAddon',
  keys: ['addon', 'fromAddons', 'fromPorts', 'fromTrash', 'toAddons', 'toPorts', 'toMachine'],
  args: ['name', 'id', 'from', 'machine', 'newId', 'host', 'portFirst', 'portLast', 'silentMs'],
});

/** Replies when the next scheduled backup is due (0 when off). */
export const setAddonBackupSchedule = defineScript<number>()({
  name: 'setAddonBackupSchedule',
  keys: ['addon'],
  args: ['name', 'everyMs'],
});

/** Replies {the period's slot claimed, now}, or 0. */
export const claimAddonBackup = defineScript<[number, number] | number>()({
  name: 'claimAddonBackup',
  keys: ['addon'],
  args: ['name', 'id'],
});

/** Replies 1, or 0 when the add-on is gone or another. */
export const recordAddonBackup = defineScript<number>()({
  name: 'recordAddonBackup',
  keys: ['addon'],
  args: ['name', 'id', 'at', 'backup', 'error'],
});

export const ADDON_SCRIPTS = [createAddon, attachAddon, detachAddon, destroyAddon, claimAddon, reportAddon, reportAddonUsage, moveAddon, setAddonBackupSchedule, claimAddonBackup, recordAddonBackup] as const;
