import { DISCONNECT_REASONS, STATS_FIELDS, type DisconnectReason, type StatsField } from '../contract';
import type { ServerStats } from '../server/types';

/** Every counter at zero, with the fields of the contract's STATS_FIELDS, one close count per reason and no IO thread. */
export function emptyStats(): ServerStats {
  const counters = {} as Record<StatsField, number>;
  for (const field of STATS_FIELDS) counters[field] = 0;
  const closes = {} as Record<DisconnectReason, number>;
  for (const reason of DISCONNECT_REASONS) closes[reason] = 0;
  return { ...counters, closes, threads: [] };
}
