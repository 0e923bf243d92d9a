#!/usr/bin/env node
'use strict';
// Cluster soak: three chat servers (nodes) on one Redis of the script's own
// (redis-server on a free port in a temporary directory, stopped at the end),
// for a bounded number of minutes:
//
// - shared rooms whose stable members sit on every node and chat at a fixed
//   rate, so that most notifies cross nodes by way of Redis;
// - churn loops that connect to node after node, log in, enter a shared room,
//   chat, and leave (two cycles in three) or drop the connection (RST);
// - optionally the load generator's chat scenario over every node at once
//   (rooms of 10 spread over the nodes), as background volume in the stream.
//
// Every chat of the checked rooms carries its sender's sequence number. The
// check: every chat that got ROOM_CHAT_RESPONSE(NONE) reaches every member
// present for its whole lifetime exactly once, and the chats of one sender
// (one user id, across its logins) arrive in the order sent. A member is
// present for a chat's lifetime when its ROOM_ENTER_RESPONSE came before the
// chat was sent, and it stayed in the room (a stable member) or left only
// after a stable member on its own node had the chat: that node had then
// delivered the chat to the whole room. Fails on any lost, duplicated,
// reordered or unexpected notify, a churn error, a node that exits, or a
// node that counted lost chats or lost its lease.
//
//   npm run soak:cluster -- --minutes 2
//   npm run soak:cluster -- --minutes 10 --backend js --json cluster-soak.json
//
// Linux only (/proc). Exit code 0 = pass, 1 = fail, 2 = usage error.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const {
  ROOT,
  ensureCompiled,
  startServer,
  runLoadgen,
  sleep,
  log,
  numberIn,
  backendName,
  scriptProgram,
  ChatConnection,
  ID,
  loginBody,
  enterBody,
} = require('./harness.js');

/**
 * @typedef {object} Options
 * @property {number} minutes
 * @property {'native' | 'js'} backend
 * @property {number} nodes
 * @property {number} rooms shared (checked) rooms
 * @property {number} stablePerNode stable members of each shared room on each node
 * @property {number} rate chats per second per stable member
 * @property {number} churn churn loops
 * @property {number} churnChats chats per churn cycle
 * @property {number} churnPauseMs
 * @property {number} loadUsers load generator users (0 = none)
 * @property {number} loadRate chats per second per load generator user
 * @property {number} leaseMs
 * @property {number} drainS
 * @property {string} [json]
 * @property {string} [serverLogDir]
 */

/**
 * One login session's stay in a shared room, and what it received there.
 * @typedef {object} Member
 * @property {string} userId
 * @property {number} node
 * @property {number} room
 * @property {boolean} stable
 * @property {number} enteredAt when its ROOM_ENTER_RESPONSE(NONE) was seen (Infinity before)
 * @property {number} leftAt when it sent ROOM_LEAVE (Infinity: stayed); for a dropped connection, when it sent its
 *   last request that was answered: what the node queued for it before that answer arrived before it
 * @property {Map<string, { count: number, at: number }>} got chat key -> receipts
 * @property {Map<string, number>} lastSeq sender -> the last sequence number received from it
 * @property {number} outOfOrder
 * @property {number} notifies
 */
/** @typedef {{ room: number, node: number, sender: string, seq: number, sentAt: number, result: number | undefined }} Chat */
/** @typedef {import('./harness.js').ChurnState} ChurnState */

const DEFAULTS = {
  minutes: 2,
  backend: /** @type {'native' | 'js'} */ ('native'),
  nodes: 3,
  rooms: 6,
  stablePerNode: 3,
  rate: 2,
  churn: 9,
  churnChats: 2,
  churnPauseMs: 50,
  loadUsers: 300,
  loadRate: 1,
  leaseMs: 5000,
  drainS: 20,
};

/**
 * @param {string[]} argv
 * @returns {Options}
 */
function parseArgs(argv) {
  const cmd = scriptProgram(
    'soak-cluster',
    'Runs a cluster of chat servers on a Redis of its own under cross-node chat and churn, and checks that every ' +
      'accepted chat reaches every member exactly once, in per-sender order.',
  )
    .option('--minutes <n>', 'length of the load', numberIn(0.25, 60), DEFAULTS.minutes)
    .option('--backend <name>', 'native | js', backendName, DEFAULTS.backend)
    .option('--nodes <n>', 'chat servers in the cluster', numberIn(2, 8), DEFAULTS.nodes)
    .option('--rooms <n>', 'shared rooms whose chats are checked', numberIn(1, 100), DEFAULTS.rooms)
    .option('--stable-per-node <n>', 'members of each shared room on each node that stay for the whole run', numberIn(1, 20), DEFAULTS.stablePerNode)
    .option('--rate <x>', 'chats per second per stable member', numberIn(0.1, 50), DEFAULTS.rate)
    .option('--churn <n>', 'churn loops: connect to the next node, login, enter, chat, leave or drop', numberIn(0, 200), DEFAULTS.churn)
    .option('--churn-chats <n>', 'chats per churn cycle', numberIn(0, 20), DEFAULTS.churnChats)
    .option('--churn-pause-ms <n>', "pause between one loop's cycles", numberIn(0, 60000), DEFAULTS.churnPauseMs)
    .option('--load-users <n>', 'load generator users in rooms of 10 spread over the nodes (0 = none)', numberIn(0, 20000), DEFAULTS.loadUsers)
    .option('--load-rate <x>', 'chats per second per load generator user', numberIn(0.01, 100), DEFAULTS.loadRate)
    .option('--lease-ms <n>', "the nodes' cluster lease", numberIn(1000, 600000), DEFAULTS.leaseMs)
    .option('--drain-s <n>', 'after the load, wait at most this long for the last chats to arrive', numberIn(1, 600), DEFAULTS.drainS)
    .option('--json <file>', 'write the summary to FILE')
    .option('--server-log-dir <dir>', 'write what each node prints to DIR/node<i>.log')
    .parse(argv, { from: 'user' });
  const o = /** @type {Options} */ (cmd.opts());
  for (const k of /** @type {const} */ (['nodes', 'rooms', 'stablePerNode', 'churn', 'churnChats', 'loadUsers'])) {
    if (!Number.isInteger(o[k])) cmd.error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be an integer`, { exitCode: 2 });
  }
  if (o.loadUsers % 10 !== 0) cmd.error('--load-users must be a multiple of 10', { exitCode: 2 });
  return o;
}

// ---- what the clients saw ----

/** @type {Map<string, Chat>} chat key (sender|seq) -> the chat */
const chats = new Map();
/** @type {Member[]} */
const members = [];
/** @type {Map<string, number>} sender -> its next sequence number, across its logins */
const nextSeq = new Map();
let unparsable = 0;

/** @param {Buffer} field a NUL-terminated char field */
function cString(field) {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/**
 * Records a ROOM_CHAT_NOTIFY (char UserID[21], char Msg[257]) at member m.
 * @param {Member} m
 * @param {Buffer} body
 */
function onChatNotify(m, body) {
  const now = performance.now();
  m.notifies++;
  const sender = cString(body.subarray(0, 21));
  const seq = Number(cString(body.subarray(21)));
  if (!Number.isInteger(seq)) {
    unparsable++;
    return;
  }
  const key = `${sender}|${seq}`;
  const r = m.got.get(key);
  if (r !== undefined) {
    r.count++;
    return;
  }
  m.got.set(key, { count: 1, at: now });
  const last = m.lastSeq.get(sender);
  if (last !== undefined && seq <= last) m.outOfOrder++;
  else m.lastSeq.set(sender, seq);
}

/**
 * Sends one chat of member m and records it; resolves with its Result.
 * @param {ChatConnection} c
 * @param {Member} m
 */
async function sendChat(c, m) {
  const seq = nextSeq.get(m.userId) ?? 1;
  nextSeq.set(m.userId, seq + 1);
  /** @type {Chat} */
  const chat = { room: m.room, node: m.node, sender: m.userId, seq, sentAt: 0, result: undefined };
  chats.set(`${m.userId}|${seq}`, chat);
  const reply = c.request(ID.CHAT, Buffer.from(`${seq}\0`), ID.CHAT_RES);
  // request() has written the packet by now.
  chat.sentAt = performance.now();
  chat.result = await reply;
  return chat.result;
}

/**
 * A member record for a login session about to enter room on node.
 * @param {string} userId
 * @param {number} node
 * @param {number} room
 * @param {boolean} stable
 * @returns {Member}
 */
function newMember(userId, node, room, stable) {
  return { userId, node, room, stable, enteredAt: Infinity, leftAt: Infinity, got: new Map(), lastSeq: new Map(), outOfOrder: 0, notifies: 0 };
}

/**
 * Opens a connection to port whose ROOM_CHAT_NOTIFYs go to holder.member.
 * @param {number} port
 * @param {{ member: Member | undefined }} holder
 */
function openMember(port, holder) {
  return ChatConnection.open(port, (id, body) => {
    if (id === ID.CHAT_NOTIFY && holder.member !== undefined) onChatNotify(holder.member, body);
  });
}

/**
 * Logs in, retrying while the id is still held (LOGIN_USER_ALREADY, 31): the
 * release of the previous login may still be on its way through Redis.
 * @param {ChatConnection} c
 * @param {string} userId
 * @param {ChurnState} [state]
 */
async function login(c, userId, state) {
  let result = await c.request(ID.LOGIN, loginBody(userId), ID.LOGIN_RES);
  for (let retry = 0; result === 31 && retry < 250; retry++) {
    if (state) state.relogins++;
    await sleep(20);
    result = await c.request(ID.LOGIN, loginBody(userId), ID.LOGIN_RES);
  }
  if (result !== 0) throw new Error(`login of ${userId} refused with ${result}`);
}

/**
 * Enters m.room and records m as a member from the response on.
 * @param {ChatConnection} c
 * @param {Member} m
 */
async function enter(c, m) {
  const result = await c.request(ID.ENTER, enterBody(m.room), ID.ENTER_RES);
  if (result !== 0) throw new Error(`${m.userId} could not enter room ${m.room} on node ${m.node}: ${result}`);
  // Notifies that came in the same read as the response are recorded already; a later enteredAt only asks less.
  m.enteredAt = performance.now();
  members.push(m);
}

/**
 * A stable member: logs in on its node and enters its room (stableChatter then chats).
 * @param {number[]} ports
 * @param {string} userId
 * @param {number} node
 * @param {number} room
 */
async function stableMember(ports, userId, node, room) {
  const holder = { member: /** @type {Member | undefined} */ (undefined) };
  const c = await openMember(ports[node], holder);
  await login(c, userId);
  const m = newMember(userId, node, room, true);
  holder.member = m;
  await enter(c, m);
  return { c, m };
}

/**
 * @param {{ c: ChatConnection, m: Member }} s
 * @param {Options} o
 * @param {{ stopping: boolean, refused: number, errors: number, lastError: string }} state
 */
async function stableChatter(s, o, state) {
  const interval = 1000 / o.rate;
  await sleep(Math.random() * interval);
  let due = performance.now();
  while (!state.stopping) {
    try {
      const result = await sendChat(s.c, s.m);
      if (result !== 0) state.refused++;
    } catch (err) {
      state.errors++;
      state.lastError = err instanceof Error ? err.message : String(err);
      return;
    }
    due += interval;
    await sleep(Math.max(0, due - performance.now()));
  }
}

/**
 * A churn loop: one user id, a different node and shared room each cycle.
 * @param {number} k
 * @param {number[]} ports
 * @param {Options} o
 * @param {ChurnState} state
 */
async function churnLoop(k, ports, o, state) {
  const userId = `churn${k}`;
  let cycle = 0;
  while (!state.stopping) {
    cycle++;
    const node = (k + cycle) % ports.length;
    const room = (k * 7 + cycle) % o.rooms;
    const holder = { member: /** @type {Member | undefined} */ (undefined) };
    /** @type {ChatConnection | undefined} */
    let c;
    try {
      c = await openMember(ports[node], holder);
      await login(c, userId, state);
      const m = newMember(userId, node, room, false);
      holder.member = m;
      await enter(c, m);
      let lastAnswered = m.enteredAt;
      for (let i = 0; i < o.churnChats; i++) {
        const sending = sendChat(c, m);
        const sentAt = performance.now();
        const result = await sending;
        lastAnswered = sentAt;
        if (result !== 0) throw new Error(`chat of ${userId} refused with ${result}`);
        await sleep(20 + Math.random() * 80);
      }
      if (cycle % 3 === 0) {
        // Notifies still on their way are thrown away with the connection: only what came before that answer counts.
        m.leftAt = lastAnswered;
        c.socket.resetAndDestroy();
        state.drops++;
        await c.ended;
      } else {
        const leaving = c.request(ID.LEAVE, Buffer.alloc(0), ID.LEAVE_RES);
        m.leftAt = performance.now();
        const leave = await leaving;
        if (leave !== 0) throw new Error(`leave refused with ${leave}`);
        c.socket.end();
        await c.ended;
      }
      state.cycles++;
    } catch (err) {
      state.errors++;
      state.lastError = err instanceof Error ? err.message : String(err);
      if (holder.member) holder.member.leftAt = Math.min(holder.member.leftAt, performance.now());
      if (c) c.socket.destroy();
      await sleep(200);
    }
    if (o.churnPauseMs > 0) await sleep(o.churnPauseMs);
  }
}

// ---- the check ----

/**
 * What the members got against what they had to get.
 * @param {number} nodes
 */
function check(nodes) {
  /** @type {Map<number, Array<[string, Chat]>>} room -> its accepted chats */
  const byRoom = new Map();
  for (const [key, chat] of chats) {
    if (chat.result !== 0) continue;
    let list = byRoom.get(chat.room);
    if (list === undefined) byRoom.set(chat.room, (list = []));
    list.push([key, chat]);
  }
  // The first receipt of each chat among the stable members of each node: by then that node had delivered it to the room.
  /** @type {Map<string, number[]>} */
  const firstAt = new Map();
  for (const m of members) {
    if (!m.stable) continue;
    for (const [key, r] of m.got) {
      let at = firstAt.get(key);
      if (at === undefined) firstAt.set(key, (at = new Array(nodes).fill(Infinity)));
      at[m.node] = Math.min(at[m.node], r.at);
    }
  }
  let checked = 0;
  let crossNode = 0;
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let unexpected = 0;
  let notifies = 0;
  /** @type {string[]} */
  const examples = [];
  for (const m of members) {
    notifies += m.notifies;
    outOfOrder += m.outOfOrder;
    for (const [key, r] of m.got) {
      duplicated += r.count - 1;
      const chat = chats.get(key);
      // A notify of a chat never sent, refused, or of another room.
      if (chat === undefined || chat.result !== 0 || chat.room !== m.room) unexpected++;
    }
    for (const [key, chat] of byRoom.get(m.room) ?? []) {
      if (!(chat.sentAt > m.enteredAt) || chat.sentAt >= m.leftAt) continue;
      if (!m.stable && !((firstAt.get(key)?.[m.node] ?? Infinity) < m.leftAt)) continue;
      checked++;
      if (chat.node !== m.node) crossNode++;
      if (!m.got.has(key)) {
        lost++;
        if (examples.length < 5) examples.push(`${key} (room ${chat.room}, node ${chat.node}) missing at ${m.userId} on node ${m.node}`);
      }
    }
  }
  return { checked, crossNode, lost, duplicated, outOfOrder, unexpected: unexpected + unparsable, notifies, examples };
}

/** Stable members still missing an accepted chat of their room. */
function stableMissing() {
  let missing = 0;
  for (const m of members) {
    if (!m.stable) continue;
    for (const [key, chat] of chats) {
      if (chat.result === 0 && chat.room === m.room && chat.sentAt > m.enteredAt && !m.got.has(key)) missing++;
    }
  }
  return missing;
}

// ---- the nodes ----

/**
 * GET a URL's text body.
 * @param {string} url
 * @returns {Promise<string>}
 */
function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s) => (text += s));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/**
 * The cluster counters (iocpnet_cluster_*_total) of a node's /metrics.
 * @param {number} port
 * @returns {Promise<Record<string, number>>}
 */
async function clusterCounters(port) {
  const text = await get(`http://127.0.0.1:${port}/metrics`);
  /** @type {Record<string, number>} */
  const out = {};
  for (const m of text.matchAll(/^iocpnet_cluster_(\w+)_total (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.platform !== 'linux') throw new Error('the soak reads /proc: Linux only');
  ensureCompiled();
  const procStats = /** @type {typeof import('../../bench/proc-stats')} */ (require(path.join(ROOT, 'dist', 'bench', 'proc-stats.js')));
  const { RedisServer, freePort, redisServerAvailable } = /** @type {typeof import('../../bench/redis-server')} */ (
    require(path.join(ROOT, 'dist', 'bench', 'redis-server.js'))
  );
  if (!redisServerAvailable()) throw new Error('redis-server is not installed (apt-get install redis-server; .ci/run installs it)');
  const { ensureLoadgen } = /** @type {typeof import('../../bench/loadgen-build')} */ (require(path.join(ROOT, 'dist', 'bench', 'loadgen-build.js')));
  const loadgen = o.loadUsers > 0 ? ensureLoadgen(ROOT, log) : undefined;

  const loadRooms = o.loadUsers / 10;
  const roomUsers = Math.max(10, o.stablePerNode * o.nodes + o.churn);
  const redis = await RedisServer.start();
  log(`redis-server pid ${redis.pid} on 127.0.0.1:${redis.port} (${redis.dir})`);
  /** @type {Array<{ child: import('node:child_process').ChildProcess, pid: number, port: number, metricsPort: number, exited: boolean }>} */
  const nodes = [];
  /** @type {ReturnType<typeof runLoadgen> | undefined} */
  let loadgenRun;
  /** @type {ChurnState} */
  const churn = { stopping: false, cycles: 0, drops: 0, relogins: 0, errors: 0, lastError: '' };
  const stable = { stopping: false, refused: 0, errors: 0, lastError: '' };
  /** @type {ChatConnection[]} */
  const stableConns = [];
  /** @type {string[]} */
  const failures = [];
  let summary;
  try {
    if (o.serverLogDir) fs.mkdirSync(o.serverLogDir, { recursive: true });
    for (let i = 0; i < o.nodes; i++) {
      const metricsPort = await freePort();
      const settings = { backend: o.backend, roomUsers, serverLog: o.serverLogDir ? path.join(o.serverLogDir, `node${i}.log`) : undefined };
      const extra = ['--redis', redis.url, '--node-id', `node${i}`, '--cluster-lease-ms', String(o.leaseMs), '--metrics-port', String(metricsPort)];
      const s = await startServer(settings, o.rooms + loadRooms, 4 * (o.loadUsers + o.rooms * o.stablePerNode + o.churn) + 256, extra);
      const node = { child: s.child, pid: s.pid, port: s.port, metricsPort, exited: false };
      s.child.once('exit', () => (node.exited = true));
      nodes.push(node);
      log(`node${i}: pid ${s.pid} (${o.backend}) on 127.0.0.1:${s.port}, metrics on ${metricsPort}`);
    }
    const ports = nodes.map((n) => n.port);
    const durationS = Math.round(o.minutes * 60);

    if (loadgen !== undefined) {
      /** @type {(line: string) => void} */
      let ready = () => undefined;
      /** @type {Promise<string>} */
      const readyPromise = new Promise((resolve) => (ready = resolve));
      loadgenRun = runLoadgen(
        loadgen,
        [
          '--scenario',
          'chat',
          '--ports',
          ports.join(','),
          '--connections',
          String(o.loadUsers),
          '--room-users',
          '10',
          '--start-room',
          String(o.rooms),
          '--rate',
          String(o.loadRate),
          '--warmup',
          '0',
          '--duration',
          String(durationS),
          '--id-prefix',
          'L',
          '--threads',
          '1',
        ],
        (line) => ready(line),
        () => undefined,
      );
      const readyLine = await Promise.race([readyPromise, loadgenRun.done.then((r) => `exited ${r.code}: ${r.stderr.join(' ')}`)]);
      if (!String(readyLine).startsWith('@ready')) throw new Error(`the load generator did not set up its users: ${readyLine}`);
      log(`${o.loadUsers} load generator users ready over ${o.nodes} nodes, ${o.loadRate} chats/s each`);
    }

    // The stable members: each shared room has stablePerNode of them on every node.
    /** @type {Array<Promise<{ c: ChatConnection, m: Member }>>} */
    const joining = [];
    for (let room = 0; room < o.rooms; room++) {
      for (let node = 0; node < o.nodes; node++) {
        for (let j = 0; j < o.stablePerNode; j++) joining.push(stableMember(ports, `s${room}n${node}m${j}`, node, room));
      }
    }
    const stables = await Promise.all(joining);
    for (const s of stables) stableConns.push(s.c);
    log(`${stables.length} stable members in ${o.rooms} shared rooms, ${o.rate} chats/s each; ${o.churn} churn loops; ${durationS} s`);

    const redisCpu0 = redis.cpuSeconds();
    const t0 = performance.now();
    const chatters = stables.map((s) => stableChatter(s, o, stable));
    const loops = Array.from({ length: o.churn }, (_, k) => churnLoop(k, ports, o, churn));
    let nextReport = 60;
    while ((performance.now() - t0) / 1000 < durationS) {
      await sleep(1000);
      const t = (performance.now() - t0) / 1000;
      if (t >= nextReport) {
        nextReport += 60;
        const rss = nodes.map((n) => ((procStats.memory(n.pid)?.rssKiB ?? 0) / 1024).toFixed(0)).join('/');
        log(`t=${t.toFixed(0)} s chats=${chats.size} churn cycles=${churn.cycles} errors=${churn.errors + stable.errors} RSS ${rss} MiB`);
      }
      if (nodes.some((n) => n.exited)) break;
    }
    const loadS = (performance.now() - t0) / 1000;
    const redisCpu1 = redis.cpuSeconds();
    const rss = nodes.map((n) => procStats.memory(n.pid));
    stable.stopping = true;
    churn.stopping = true;
    await Promise.all([...chatters, ...loops]);

    // The last chats are on their way through Redis.
    const drainStart = performance.now();
    let missing = stableMissing();
    while (missing > 0 && performance.now() - drainStart < o.drainS * 1000) {
      await sleep(250);
      missing = stableMissing();
    }
    const drainS = (performance.now() - drainStart) / 1000;
    const result = check(o.nodes);

    // The load generator stops by itself at the end of its duration, which began before the members joined.
    const run = loadgenRun;
    const watchdog = setTimeout(() => {
      log('the load generator did not stop in time; killing it');
      run?.child.kill('SIGKILL');
    }, 60000);
    const loadgenResult = run ? await run.done : undefined;
    clearTimeout(watchdog);
    const counters = await Promise.all(nodes.map((n) => (n.exited ? Promise.resolve(undefined) : clusterCounters(n.metricsPort))));
    const sum = (/** @type {string} */ k) => counters.reduce((a, c) => a + (c?.[k] ?? 0), 0);

    for (const [i, n] of nodes.entries()) if (n.exited) failures.push(`node${i} exited during the run`);
    if (result.lost > 0) failures.push(`${result.lost} notifies lost, e.g. ${result.examples.join('; ')}`);
    if (result.duplicated > 0) failures.push(`${result.duplicated} notifies duplicated`);
    if (result.outOfOrder > 0) failures.push(`${result.outOfOrder} notifies out of their sender's order`);
    if (result.unexpected > 0) failures.push(`${result.unexpected} notifies of chats never accepted, or of another room`);
    if (result.checked === 0 || result.crossNode === 0) failures.push('no cross-node notify was checked');
    if (stable.errors > 0) failures.push(`${stable.errors} stable member errors, last: ${stable.lastError}`);
    if (stable.refused > 0) failures.push(`${stable.refused} chats of stable members refused`);
    if (churn.errors > 0) failures.push(`${churn.errors} churn errors, last: ${churn.lastError}`);
    if (o.churn > 0 && churn.cycles === 0) failures.push('no churn cycle completed');
    if (sum('lost_chats') > 0) failures.push(`the nodes counted ${sum('lost_chats')} chats missing from the stream`);
    if (sum('leases_lost') > 0) failures.push(`nodes lost their lease ${sum('leases_lost')} times`);
    const report = loadgenResult?.report;
    if (loadgenResult && !report) failures.push(`the load generator gave no report (exit ${loadgenResult.code}): ${loadgenResult.stderr.join(' ')}`);
    if (report) {
      const errs = Object.entries(report.errors).filter(([k, v]) => k !== 'last_errno' && k !== 'last_result' && v > 0);
      if (report.ready !== o.loadUsers || report.failed > 0) failures.push(`load generator users ready ${report.ready}/${o.loadUsers}`);
      if (errs.length > 0) failures.push(`load generator errors: ${errs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      if (Object.keys(report.disconnect_notify).length > 0)
        failures.push(`load generator users were disconnected: ${JSON.stringify(report.disconnect_notify)}`);
    }

    const accepted = [...chats.values()].filter((c) => c.result === 0).length;
    summary = {
      backend: o.backend,
      nodes: o.nodes,
      minutes: o.minutes,
      loadSeconds: loadS,
      drainSeconds: drainS,
      sharedRooms: o.rooms,
      stableMembers: stables.length,
      churnLoops: o.churn,
      churnCycles: churn.cycles,
      churnDrops: churn.drops,
      churnRelogins: churn.relogins,
      chats: accepted,
      notifiesReceived: result.notifies,
      notifiesChecked: result.checked,
      crossNodeChecked: result.crossNode,
      lost: result.lost,
      duplicated: result.duplicated,
      outOfOrder: result.outOfOrder,
      unexpected: result.unexpected,
      rssMiB: rss.map((m) => (m ? m.rssKiB / 1024 : null)),
      peakRssMiB: rss.map((m) => (m ? m.hwmKiB / 1024 : null)),
      redisCpuPct: redisCpu0 !== undefined && redisCpu1 !== undefined ? (100 * (redisCpu1 - redisCpu0)) / loadS : null,
      cluster: Object.fromEntries(
        ['chats_published', 'batches_published', 'chats_received', 'duplicates_dropped', 'lost_chats', 'chats_refused', 'reconnects'].map((k) => [k, sum(k)]),
      ),
      loadgen: report
        ? { users: o.loadUsers, chatsPerS: report.requests_per_s, notifiesPerS: report.throughput.value, deliveryUs: report.delivery_us ?? null }
        : null,
      loadAverage: require('node:os').loadavg(),
      pass: failures.length === 0,
      failures,
    };
  } finally {
    stable.stopping = true;
    churn.stopping = true;
    for (const c of stableConns) c.socket.destroy();
    if (loadgenRun && loadgenRun.child.exitCode === null) loadgenRun.child.kill('SIGKILL');
    await Promise.all(
      nodes.map(async (n) => {
        if (n.exited) return;
        n.child.kill('SIGTERM');
        await Promise.race([new Promise((r) => n.child.once('exit', r)), sleep(15000)]);
        if (!n.exited) n.child.kill('SIGKILL');
      }),
    );
    await redis.stop();
  }

  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(summary, null, 1)}\n`);
  const s = summary;
  const mib = (/** @type {(number | null)[]} */ xs) => xs.map((x) => (x === null ? '?' : x.toFixed(0))).join('/');
  const lg = s.loadgen;
  console.log(
    `soak:cluster ${s.pass ? 'PASS' : 'FAIL'}: ${s.backend}, ${s.nodes} nodes, ${s.loadSeconds.toFixed(0)} s; ${s.chats} chats in ${s.sharedRooms} shared rooms ` +
      `(${s.stableMembers} stable members, ${s.churnCycles} churn cycles, ${s.churnDrops} dropped); ` +
      `${s.notifiesChecked} notifies checked (${s.crossNodeChecked} across nodes): lost ${s.lost}, duplicated ${s.duplicated}, ` +
      `out of order ${s.outOfOrder}, unexpected ${s.unexpected}; ` +
      (lg
        ? `load generator ${lg.users} users, ${lg.notifiesPerS.toFixed(0)} notifies/s, delivery p99 ${lg.deliveryUs ? (lg.deliveryUs.p99 / 1000).toFixed(1) : '?'} ms; `
        : '') +
      `RSS per node ${mib(s.rssMiB)} MiB (peak ${mib(s.peakRssMiB)}); Redis CPU ${s.redisCpuPct === null ? '?' : s.redisCpuPct.toFixed(1)}%; ` +
      `stream ${s.cluster.batches_published} entries for ${s.cluster.chats_published} chats, ${s.cluster.duplicates_dropped} resent entries dropped; ` +
      `load average ${s.loadAverage.map((x) => x.toFixed(1)).join(' ')}` +
      (s.pass ? '' : `\n  ${s.failures.join('\n  ')}`),
  );
  process.exitCode = s.pass ? 0 : 1;
}

main().catch((err) => {
  console.error(`soak:cluster: ${err instanceof Error ? err.stack || err.message : String(err)}`);
  process.exit(1);
});
