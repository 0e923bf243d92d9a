// Type-checked (not run) against the installed package with module "nodenext".
import iocpnet = require('iocpnet');

const server: iocpnet.Server = iocpnet.createServer({ ioThreads: 1 });
server.on('packet', (conn, packetId, body) => {
  conn.send(packetId, body);
});
