/**
 * The cluster's figures, apart from the adapter so that the metrics can name
 * them without loading the cluster layer and its Redis client.
 */

/** The cluster's counters and gauges, in ChatStats.cluster. */
// A type, not an interface, so that it is a Record<string, number> for ChatStats.
export type ClusterStats = {
  /** Stream entries of chats this node appended (one per flush with chats). */
  batchesPublished: number;
  chatsPublished: number;
  /** Chats of other nodes read from the stream. */
  chatsReceived: number;
  /** Chat entries read twice (a resent XADD) and dropped. */
  duplicatesDropped: number;
  /** Chats missing from the stream (a gap in a sender's sequence numbers, or an XADD that Redis refused): what a Redis restart lost. */
  lostChats: number;
  /** Chats refused because maxBufferBytes were waiting for Redis. */
  chatsRefused: number;
  /** Logins and enters refused because Redis did not answer within the lease. */
  claimTimeouts: number;
  enterTimeouts: number;
  /** Users of dead nodes this node removed. */
  usersRemoved: number;
  /** Times this node wrote its state back into an empty Redis. */
  rebuilds: number;
  /** Times this node found itself removed as dead. */
  leasesLost: number;
  /** Connection errors of the two Redis connections, and their reconnections. */
  redisErrors: number;
  reconnects: number;
  /** Gauge: chats of this node waiting for Redis to take them for the other nodes (not sent yet, or sent and not acknowledged). */
  bufferedChats: number;
  /** Gauge: their bytes, which maxBufferBytes bounds. */
  bufferedBytes: number;
  /** Gauge: the live nodes of the cluster at the last heartbeat, this one included (0 before the first). */
  nodes: number;
};

/** Every field of ClusterStats, in their order there. */
export const CLUSTER_STATS_FIELDS = [
  'batchesPublished',
  'chatsPublished',
  'chatsReceived',
  'duplicatesDropped',
  'lostChats',
  'chatsRefused',
  'claimTimeouts',
  'enterTimeouts',
  'usersRemoved',
  'rebuilds',
  'leasesLost',
  'redisErrors',
  'reconnects',
  'bufferedChats',
  'bufferedBytes',
  'nodes',
] as const satisfies ReadonlyArray<keyof ClusterStats>;

/** Upper bounds of the Redis round-trip histogram, in seconds. */
export const REDIS_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;
