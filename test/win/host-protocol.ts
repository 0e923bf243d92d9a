/**
 * The control protocol between the Linux-side tests and the server host
 * that runs in Windows Node under Wine (test/win/host.ts). One JSON object
 * per line over TCP on 127.0.0.1, both ways.
 *
 * Requests carry `req` (a number) and get one reply with `re` equal to it.
 * Events (`ev`) flow from the host as the servers produce them, in the order
 * the Server emitted them; a server's events come before the reply to a
 * request sent after them.
 */
import type { ChatOptions, ChatStats } from '../../lib/chat/chat-server';
import type { DisconnectReason, Transport } from '../../lib/contract';
import type { ServerOptions, ServerStats } from '../../lib/server/types';

/**
 * What a started server does on its own, inside the host:
 * 'plain' nothing (the test drives it through send/close requests),
 * 'echo' sends every packet back to its sender,
 * 'chat' serves the chat protocol (PROTOCOL.md section 3).
 */
export type HostApp = 'plain' | 'echo' | 'chat';

/** Chat options that cross as JSON; `password` makes every login require it. */
export type HostChatOptions = Omit<ChatOptions, 'authenticate'> & { password?: string };

/**
 * One action on a hosted server; `body` indexes the batch's bodies, so a
 * body sent to many connections crosses once.
 */
export type HostOp =
  | { kind: 'send'; srv: number; conn: number; packetId: number; body: number }
  | { kind: 'broadcast'; srv: number; conns: number[]; packetId: number; body: number }
  | { kind: 'close' | 'destroy'; srv: number; conn: number };

export type HostRequest =
  | {
      req: number;
      op: 'start';
      app: HostApp;
      options: ServerOptions;
      chat?: HostChatOptions;
      mirrorPackets: boolean;
      port?: number;
      host?: string;
    }
  | { req: number; op: 'stats'; srv: number }
  | { req: number; op: 'chatStats'; srv: number }
  | { req: number; op: 'stop'; srv: number }
  | { req: number; op: 'sync' }
  | { req: number; op: 'exit'; force?: boolean }
  | { req: number; op: 'block'; ms: number }
  // The actions a test made in one turn of its event loop, run by the host in one turn of its own,
  // as the Server would have run them in-process (one flush).
  | { req: number; op: 'batch'; bodies: string[]; ops: HostOp[] };

export type HostReply =
  | { re: number; ok: true; srv?: number; port?: number; engine?: string; stats?: ServerStats; chatStats?: ChatStats }
  | { re: number; ok: false; error: { message: string; code?: string } };

export type HostEvent =
  | { ev: 'connect'; srv: number; conn: number; remoteAddress: string; remotePort: number; transport: Transport }
  | { ev: 'packet'; srv: number; conn: number; packetId: number; body: string }
  | { ev: 'disconnect'; srv: number; conn: number; reason: DisconnectReason }
  | { ev: 'error'; srv: number; message: string }
  | { ev: 'stats'; srv: number; stats: ServerStats };

/*
 * 'block' keeps the host's JS thread busy for ms (at most 10 s), as a slow
 * handler would; 'exit' with force leaves the servers open, so that process
 * teardown has to stop them.
 */

/** The line the host prints to its stdout file once its control port is open. */
export const READY_PREFIX = 'IOCPNET_HOST';
