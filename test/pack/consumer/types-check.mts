// Type-checked (not run) against the installed package with module "nodenext".
import iocpnet, { createServer, type Server, type ServerOptions } from 'iocpnet';

const options: ServerOptions = { backend: 'native', maxConnections: 8 };
const server: Server = createServer(options);
const same: typeof createServer = iocpnet.createServer;
// @ts-expect-error: an unknown option is a type error
createServer({ notAnOption: 1 });
void server;
void same;
