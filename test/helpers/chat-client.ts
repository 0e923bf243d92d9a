import { expect } from 'vitest';
import {
  ChatPacketId,
  DisconnectCode,
  LoginRequest,
  PacketId,
  RoomChatNotify,
  RoomChatRequest,
  RoomEnterRequest,
  RoomEnterResponse,
  createChatServer,
  decodeUserList,
  type BackendName,
  type ChatServer,
  type ChatServerOptions,
  type Transport,
} from '../../lib/index';
import { RawClient, type Packet } from './raw-client';

/** Starts a chat server on 127.0.0.1:0. */
export async function startChat(backend: BackendName, options: ChatServerOptions = {}): Promise<{ chat: ChatServer; port: number }> {
  const chat = createChatServer({ ioThreads: 2, ...options, backend });
  const { port } = await chat.listen(0, '127.0.0.1');
  return { chat, port };
}

/** A LOGIN_REQUEST body; a Buffer id is sent as is, so tests can send bad ids. */
export function loginBody(userId: string | Buffer, password = ''): Buffer {
  return LoginRequest.encode({ UserID: userId, UserPW: password });
}

export function enterBody(room: number): Buffer {
  return RoomEnterRequest.encode({ RoomNumber: room });
}

export function chatBody(message: string | Buffer): Buffer {
  return RoomChatRequest.encode({ Message: message });
}

export function result(p: Packet): number {
  return p.body.readInt16LE(0);
}

export interface ChatNotify {
  userId: string;
  message: Buffer;
}

export function decodeChatNotify(p: Packet): ChatNotify {
  const v = RoomChatNotify.decode(p.body);
  return { userId: v.UserID.toString('utf8'), message: Buffer.from(v.Msg) };
}

/** The user id of ROOM_NEW_USER_NOTIFY / ROOM_LEAVE_USER_NOTIFY. */
export function notifyUser(p: Packet): string {
  const end = p.body.indexOf(0);
  return p.body.subarray(0, end < 0 ? p.body.length : end).toString('utf8');
}

export function userList(p: Packet): string[] {
  return decodeUserList(p.body).map((b) => b.toString('utf8'));
}

/**
 * A chat client for tests: a RawClient plus request helpers that wait for
 * the matching response (the first of its id after the request was sent).
 */
export class ChatTestClient {
  readonly raw: RawClient;

  private constructor(raw: RawClient) {
    this.raw = raw;
  }

  static async connect(port: number, transport: Transport = 'tcp'): Promise<ChatTestClient> {
    return new ChatTestClient(await RawClient.connect(port, '127.0.0.1', transport));
  }

  get packets(): Packet[] {
    return this.raw.packets;
  }

  /** Packets with this id, in arrival order. */
  of(id: number): Packet[] {
    return this.raw.packets.filter((p) => p.id === id);
  }

  send(id: number, body?: Uint8Array): void {
    this.raw.send(id, body);
  }

  /** Resolves with the first packet of id that arrives at index from or later. */
  async next(id: number, from: number, timeoutMs = 5000): Promise<Packet> {
    const find = () => this.raw.packets.slice(from).find((p) => p.id === id);
    await this.raw.waitFor(() => find() !== undefined, timeoutMs, `packet ${id}`);
    return find() as Packet;
  }

  async request(id: number, body: Uint8Array | undefined, responseId: number): Promise<Packet> {
    const from = this.raw.packets.length;
    this.send(id, body);
    return this.next(responseId, from);
  }

  async login(userId: string | Buffer, password = ''): Promise<number> {
    return result(await this.request(ChatPacketId.LOGIN_REQUEST, loginBody(userId, password), ChatPacketId.LOGIN_RESPONSE));
  }

  /** Enters a room; on success also waits for the user list that follows. */
  async enter(room: number): Promise<{ result: number; rival: string }> {
    const from = this.raw.packets.length;
    this.send(ChatPacketId.ROOM_ENTER_REQUEST, enterBody(room));
    const p = await this.next(ChatPacketId.ROOM_ENTER_RESPONSE, from);
    const v = RoomEnterResponse.decode(p.body);
    if (v.Result === 0) await this.next(ChatPacketId.ROOM_USER_LIST_NOTIFY, from);
    return { result: v.Result, rival: v.RivalUserID.toString('utf8') };
  }

  async leave(): Promise<number> {
    return result(await this.request(ChatPacketId.ROOM_LEAVE_REQUEST, undefined, ChatPacketId.ROOM_LEAVE_RESPONSE));
  }

  async chat(message: string | Buffer): Promise<number> {
    return result(await this.request(ChatPacketId.ROOM_CHAT_REQUEST, chatBody(message), ChatPacketId.ROOM_CHAT_RESPONSE));
  }

  /** Logs in and enters room. */
  async join(userId: string, room: number): Promise<void> {
    const login = await this.login(userId);
    if (login !== 0) throw new Error(`login of ${userId} failed with ${login}`);
    const enter = await this.enter(room);
    if (enter.result !== 0) throw new Error(`${userId} could not enter room ${room}: ${enter.result}`);
  }

  notifies(): ChatNotify[] {
    return this.of(ChatPacketId.ROOM_CHAT_NOTIFY).map(decodeChatNotify);
  }

  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void> {
    return this.raw.waitFor(pred, timeoutMs, what);
  }

  waitClosed(timeoutMs?: number): Promise<void> {
    return this.raw.waitClosed(timeoutMs);
  }

  close(): void {
    this.raw.close();
  }

  destroy(): void {
    this.raw.destroy();
  }
}

/** Tracks clients and a server so that afterEach can release them all; clients connect over transport. */
export class ChatFixture {
  readonly clients: ChatTestClient[] = [];
  chat: ChatServer | undefined;
  port = 0;

  constructor(readonly transport: Transport = 'tcp') {}

  async start(backend: BackendName, options: ChatServerOptions = {}): Promise<ChatServer> {
    const started = await startChat(backend, options);
    this.chat = started.chat;
    this.port = started.port;
    return started.chat;
  }

  async client(): Promise<ChatTestClient> {
    const c = await ChatTestClient.connect(this.port, this.transport);
    this.clients.push(c);
    return c;
  }

  async clientsN(n: number): Promise<ChatTestClient[]> {
    const out: ChatTestClient[] = [];
    for (let i = 0; i < n; i++) out.push(await this.client());
    return out;
  }

  async dispose(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients.length = 0;
    const chat = this.chat;
    this.chat = undefined;
    if (chat) await chat.close();
  }
}

/** The client got exactly one DISCONNECT_NOTIFY(SERVER_SHUTDOWN), as the last packet, then a FIN. */
export function expectShutdownNotify(c: ChatTestClient): void {
  const last = c.packets[c.packets.length - 1];
  expect(last.id).toBe(PacketId.DISCONNECT_NOTIFY);
  expect(last.body.readUInt16LE(0)).toBe(DisconnectCode.SERVER_SHUTDOWN);
  expect(c.of(PacketId.DISCONNECT_NOTIFY).length).toBe(1);
  expect(c.raw.ended).toBe(true);
  expect(c.raw.error).toBeUndefined();
}
