// Runs in a project that installed the iocpnet tarball: the ESM entry has the
// CommonJS entry's named exports and shares its module instance.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import iocpnet, { createServer, Server, PacketId } from 'iocpnet';

const cjs = createRequire(import.meta.url)('iocpnet');
assert.equal(iocpnet, cjs, 'the default export is the CommonJS module');
assert.equal(createServer, cjs.createServer, 'one module instance for import and require');
assert.equal(Server, cjs.Server);
const esm = await import('iocpnet');
const missing = Object.keys(cjs).filter((k) => k !== '__esModule' && !(k in esm));
assert.deepEqual(missing, [], 'every CommonJS export is an ESM named export');

const server = createServer({ ioThreads: 1 });
const { port } = await server.listen(0, '127.0.0.1');
assert.ok(port > 0 && PacketId.PING === 1);
await server.close();
console.log(JSON.stringify({ named: Object.keys(esm).length }));
