'use strict';
// Black-box check of a running chat server (PROTOCOL.md section 3): two
// clients log in, enter one room and chat. Usage: node chat-check.js PORT [HOST]
const { WireClient, fixedString, readFixedString } = require('./wire-client.js');

const Id = {
  LOGIN_REQUEST: 201,
  LOGIN_RESPONSE: 202,
  ROOM_ENTER_REQUEST: 206,
  ROOM_ENTER_RESPONSE: 207,
  ROOM_CHAT_REQUEST: 214,
  ROOM_CHAT_RESPONSE: 215,
  ROOM_CHAT_NOTIFY: 216,
  ROOM_USER_LIST_NOTIFY: 230,
  ROOM_NEW_USER_NOTIFY: 231,
};
const ENTER_ROOM_INVALID_USER_STATUS = 52;

/**
 * @param {unknown} actual
 * @param {unknown} expected
 * @param {string} what
 */
function expectEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/**
 * @param {WireClient} client
 * @param {string} user
 */
function login(client, user) {
  client.send(Id.LOGIN_REQUEST, Buffer.concat([fixedString(user, 21), fixedString('pw', 21)]));
  return client.take((p) => p.id === Id.LOGIN_RESPONSE, 5000, `LOGIN_RESPONSE for ${user}`);
}

/**
 * @param {WireClient} client
 * @param {number} room
 */
function enterRoom(client, room) {
  const body = Buffer.alloc(4);
  body.writeInt32LE(room, 0);
  client.send(Id.ROOM_ENTER_REQUEST, body);
  return client.take((p) => p.id === Id.ROOM_ENTER_RESPONSE, 5000, 'ROOM_ENTER_RESPONSE');
}

/**
 * The user ids of a ROOM_USER_LIST_NOTIFY, sorted.
 * @param {import('./wire-client.js').Packet} packet
 */
function userList(packet) {
  const count = packet.body.readUInt16LE(0);
  /** @type {string[]} */
  const users = [];
  for (let i = 0; i < count; i++) users.push(readFixedString(packet.body, 2 + 21 * i, 21));
  return users.sort();
}

/**
 * Runs the check against host:port; resolves with the steps that passed, rejects on the first failure.
 * @param {number} port
 * @param {string} [host]
 * @returns {Promise<string[]>}
 */
async function runChatCheck(port, host = '127.0.0.1') {
  /** @type {string[]} */
  const steps = [];
  // Unique names, so a server that kept state from an earlier run cannot pass by accident.
  const tag = `${process.pid % 10000}${Date.now() % 1000}`;
  const alice = `alice${tag}`;
  const bob = `bob${tag}`;
  const room = 3;
  const a = await WireClient.connect(port, host);
  const b = await WireClient.connect(port, host);
  try {
    let r = await enterRoom(a, room);
    expectEqual(r.body.readInt16LE(0), ENTER_ROOM_INVALID_USER_STATUS, 'room enter before login');
    steps.push('room enter before login is refused (52)');

    expectEqual((await login(a, alice)).body.readUInt16LE(0), 0, `login ${alice}`);
    expectEqual((await login(b, bob)).body.readUInt16LE(0), 0, `login ${bob}`);
    steps.push('two users log in');

    r = await enterRoom(a, room);
    expectEqual(r.body.readInt16LE(0), 0, `${alice} enters room ${room}`);
    expectEqual(readFixedString(r.body, 2, 21), '', 'rival of the first user in the room');
    const listA = await a.take((p) => p.id === Id.ROOM_USER_LIST_NOTIFY, 5000, 'ROOM_USER_LIST_NOTIFY');
    expectEqual(JSON.stringify(userList(listA)), JSON.stringify([alice]), 'user list after the first enter');

    r = await enterRoom(b, room);
    expectEqual(r.body.readInt16LE(0), 0, `${bob} enters room ${room}`);
    expectEqual(readFixedString(r.body, 2, 21), alice, 'rival of the second user');
    const listB = await b.take((p) => p.id === Id.ROOM_USER_LIST_NOTIFY, 5000, 'ROOM_USER_LIST_NOTIFY');
    expectEqual(JSON.stringify(userList(listB)), JSON.stringify([alice, bob].sort()), 'user list after the second enter');
    const joined = await a.take((p) => p.id === Id.ROOM_NEW_USER_NOTIFY, 5000, 'ROOM_NEW_USER_NOTIFY');
    expectEqual(readFixedString(joined.body, 0, 21), bob, 'new user notified to the room');
    steps.push('both enter one room (rival, user list, new-user notify)');

    const message = `hello from ${bob} \u00e9`;
    b.send(Id.ROOM_CHAT_REQUEST, fixedString(message, 257));
    const response = await b.take((p) => p.id === Id.ROOM_CHAT_RESPONSE, 5000, 'ROOM_CHAT_RESPONSE');
    expectEqual(response.body.readInt16LE(0), 0, 'chat result');
    /** @type {[WireClient, string][]} */
    const receivers = [
      [b, 'sender'],
      [a, 'other member'],
    ];
    for (const [client, who] of receivers) {
      const notify = await client.take((p) => p.id === Id.ROOM_CHAT_NOTIFY, 5000, `ROOM_CHAT_NOTIFY to the ${who}`);
      expectEqual(readFixedString(notify.body, 0, 21), bob, `chat notify sender id (${who})`);
      expectEqual(readFixedString(notify.body, 21, 257), message, `chat notify message (${who})`);
      if (client === b && notify.seq < response.seq) throw new Error('the sender got ROOM_CHAT_NOTIFY before ROOM_CHAT_RESPONSE');
    }
    steps.push('chat: response to the sender, then notify to every member');
  } finally {
    a.close();
    b.close();
  }
  return steps;
}

module.exports = { runChatCheck };

if (require.main === module) {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error('usage: node chat-check.js PORT [HOST]');
    process.exit(2);
  }
  runChatCheck(port, process.argv[3]).then(
    (steps) => {
      for (const s of steps) console.log(`ok ${s}`);
    },
    (err) => {
      console.error(`chat check failed: ${err.message}`);
      process.exit(1);
    },
  );
}
