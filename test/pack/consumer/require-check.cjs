'use strict';
// Runs in a project that installed the iocpnet tarball: require() resolves the
// package, the native addon loads, and a server answers over TCP.
// Prints the addon file node-gyp-build picked, relative to the package.
const assert = require('node:assert/strict');
const path = require('node:path');
const { WireClient } = require('./wire-client.js');
const iocpnet = require('iocpnet');

async function main() {
  for (const name of /** @type {const} */ (['createServer', 'Server', 'Connection', 'IocpnetError', 'PacketId', 'encodePacket'])) {
    assert.notEqual(iocpnet[name], undefined, `require('iocpnet').${name}`);
  }
  const root = path.dirname(require.resolve('iocpnet/package.json'));
  const nodeGypBuild = require(require.resolve('node-gyp-build', { paths: [root] }));
  const addon = path.relative(root, nodeGypBuild.resolve(root));

  const server = iocpnet.createServer({ backend: 'native', ioThreads: 1, idleTimeoutMs: 0 });
  server.on('packet', (conn, packetId, body) => conn.send(packetId + 1, Buffer.from(body)));
  const { port } = await server.listen(0, '127.0.0.1');
  const client = await WireClient.connect(port);
  try {
    const ping = Buffer.from('pack-check');
    client.send(iocpnet.PacketId.PING, ping);
    const pong = await client.take((p) => p.id === iocpnet.PacketId.PONG, 5000, 'PONG');
    assert.deepEqual(pong.body, ping, 'PONG echoes the PING body');
    client.send(500, Buffer.from('to the handler'));
    const reply = await client.take((p) => p.id === 501, 5000, 'the handler reply');
    assert.equal(reply.body.toString(), 'to the handler');
  } finally {
    client.close();
    await server.close();
  }
  console.log(JSON.stringify({ addon }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
