import { describe, expect, it } from 'vitest';
import { frame, backendsAndTransports } from './helpers/raw-client';
import { frames, notifyCode, seqBody, sleep, useEngine, waitUntil } from './helpers/engine-harness';
import { seededInt } from './helpers/random';

// Framing and system packets (PROTOCOL.md sections 1 and 2), black box over
// real TCP on 127.0.0.1, raw and as WebSocket messages.

describe.each(backendsAndTransports())('%s backend over %s: framing', (backend, transport) => {
  const engine = useEngine(backend, transport);

  it('echoes packets of every size unchanged, in order, with Type 0', async () => {
    const { port, log } = await engine.startEcho({ maxPacketSize: 8192 });
    const c = await engine.connect(port);
    const sent: Array<[number, Buffer]> = [
      [100, Buffer.alloc(0)],
      [0xffff, Buffer.from('hello')],
      [1000, seqBody(7, 8192 - 5)],
      [4242, Buffer.from([0, 1, 2, 3, 255])],
    ];
    c.write(frames(sent));
    const got = await c.waitPackets(sent.length);
    expect(got.map((p) => [p.id, p.type, p.body.toString('hex')])).toEqual(sent.map(([id, b]) => [id, 0, b.toString('hex')]));
    expect(log.connects).toHaveLength(1);
    expect(log.connects[0].remoteAddress).toBe('127.0.0.1');
    expect(log.connects[0].remotePort).toBe(c.socket.localPort);
    expect(log.connects[0].isOpen).toBe(true);
  });

  it('reassembles a stream written one byte at a time', async () => {
    const { port, log } = await engine.startEcho();
    const c = await engine.connect(port);
    const sent: Array<[number, Buffer]> = [
      [100, Buffer.from('a')],
      [101, Buffer.alloc(0)],
      [102, seqBody(1, 40)],
    ];
    const bytes = frames(sent);
    for (let i = 0; i < bytes.length; i++) {
      c.write(bytes.subarray(i, i + 1));
      await sleep(2);
    }
    const got = await c.waitPackets(sent.length);
    expect(got.map((p) => [p.id, p.body.toString('hex')])).toEqual(sent.map(([id, b]) => [id, b.toString('hex')]));
    expect(log.packets.map((p) => p.id)).toEqual([100, 101, 102]);
  });

  it('reassembles large packets cut at arbitrary points', async () => {
    const { port } = await engine.startEcho({ maxPacketSize: 65535 });
    const c = await engine.connect(port);
    const sent: Array<[number, Buffer]> = [];
    for (let i = 0; i < 12; i++) sent.push([200 + i, seqBody(i, [1, 3000, 5000, 65530, 17, 9000][i % 6])]);
    const bytes = frames(sent);
    // Cuts that fall inside headers and inside bodies.
    const rand = seededInt(12345);
    let pos = 0;
    for (let writes = 0; pos < bytes.length && writes < 10000; writes++) {
      const n = Math.min(bytes.length - pos, 1 + rand(writes % 3 === 0 ? 7 : 9000));
      c.write(bytes.subarray(pos, pos + n));
      pos += n;
      if (writes % 8 === 0) await sleep(1);
    }
    expect(pos).toBe(bytes.length);
    const got = await c.waitPackets(sent.length, 15000);
    expect(got.length).toBe(sent.length);
    got.forEach((p, i) => {
      expect(p.id).toBe(sent[i][0]);
      expect(p.body.equals(sent[i][1])).toBe(true);
    });
  });

  it('delivers 100 packets that arrive in one write', async () => {
    const { port, log } = await engine.startEcho();
    const c = await engine.connect(port);
    const sent: Array<[number, Buffer]> = [];
    for (let i = 0; i < 100; i++) sent.push([100 + i, seqBody(i, 1 + (i % 50))]);
    c.write(frames(sent));
    const got = await c.waitPackets(100);
    expect(got.map((p) => p.id)).toEqual(sent.map(([id]) => id));
    got.forEach((p, i) => expect(p.body.equals(sent[i][1])).toBe(true));
    expect(log.packets).toHaveLength(100);
  });

  it('echoes a 5000-packet burst in order', async () => {
    const { server, port } = await engine.startEcho();
    const c = await engine.connect(port);
    const count = 5000;
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) parts.push(frame(300, seqBody(i, 4 + (i % 64))));
    c.write(Buffer.concat(parts));
    const got = await c.waitPackets(count, 20000);
    expect(got.length).toBe(count);
    const seqs = got.map((p) => p.body.readUInt32LE(0));
    expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
    const s = server.stats();
    expect(s.packetsIn).toBe(count);
    expect(s.packetsOut).toBe(count);
  });

  const badPackets: Array<[string, Buffer]> = [
    ['an oversized length', frame(100, Buffer.alloc(0), { length: 1025 })],
    ['length 4', frame(100, Buffer.alloc(0), { length: 4 })],
    ['length 0', frame(100, Buffer.alloc(0), { length: 0 })],
    ['Type 1 (compressed)', frame(100, Buffer.from('zz'), { type: 1 })],
    ['Type 0x80', frame(100, Buffer.from('zz'), { type: 0x80 })],
  ];

  it('answers every request that arrived before the peer half-closed (requests sent with the FIN)', async () => {
    const { server, port } = await engine.startEcho();
    const c = await engine.connect(port);
    const count = 20;
    // end(data) puts the requests and the FIN (or the CLOSE frame) in flight together.
    c.end(frames(Array.from({ length: count }, (_, i): [number, Uint8Array] => [300, seqBody(i)])));
    await c.waitClosed(10000);
    expect(c.packets.map((p) => p.body.readUInt32LE(0))).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(server.stats().staleRefused).toBe(0);
    expect(server.stats().closes.closed).toBe(1);
  });

  it('sends the replies to packets before a protocol error ahead of the PROTOCOL_ERROR notify', async () => {
    const { server, port } = await engine.startEcho({ maxPacketSize: 1024 });
    const c = await engine.connect(port);
    c.write(Buffer.concat([frame(100, Buffer.from('one')), frame(101, Buffer.from('two')), frame(100, Buffer.alloc(0), { length: 4 })]));
    await c.waitClosed(10000);
    expect(c.packets.map((p) => p.id)).toEqual([100, 101, 3]);
    expect(notifyCode(c.packets[2])).toBe(2);
    expect(server.stats().staleRefused).toBe(0);
  });

  it.each(badPackets)('closes on %s with PROTOCOL_ERROR after delivering the packets before it', async (_name, bad) => {
    const { server, port, log } = await engine.start({ maxPacketSize: 1024 });
    const bystander = await engine.connect(port);
    const c = await engine.connect(port);
    const localPort = c.socket.localPort;
    await waitUntil(() => log.connects.length === 2, 10000, 'two connects');
    c.write(Buffer.concat([frame(100, Buffer.from('one')), frame(101, Buffer.from('two')), bad, frame(102, Buffer.from('three'))]));
    await c.waitClosed(10000);
    const last = c.packets[c.packets.length - 1];
    expect(notifyCode(last)).toBe(2);
    expect(c.packets.filter((p) => p.id === 3)).toHaveLength(1);
    await waitUntil(() => log.disconnects.length === 1, 10000, 'disconnect event');
    expect(log.disconnects[0].reason).toBe('protocol_error');
    expect(log.disconnects[0].conn.remotePort).toBe(localPort);
    expect(log.packets.map((p) => p.body.toString())).toEqual(['one', 'two']);
    expect(server.stats().closes.protocol_error).toBe(1);

    // The other connection goes on.
    server.on('packet', (conn, id, body) => conn.send(id, body));
    bystander.send(500, Buffer.from('still here'));
    const [echo] = await bystander.waitPackets(1);
    expect(echo.body.toString()).toBe('still here');
    expect(bystander.closed).toBe(false);
  });

  it('accepts a packet of exactly maxPacketSize and refuses one byte more, even when its header arrives split', async () => {
    const { port, log } = await engine.startEcho({ maxPacketSize: 1024 });
    const c = await engine.connect(port);
    c.write(frame(100, seqBody(1, 1024 - 5)));
    const [p] = await c.waitPackets(1);
    expect(p.body.length).toBe(1019);
    const bad = frame(100, Buffer.alloc(0), { length: 1025 });
    c.write(bad.subarray(0, 1));
    await sleep(20);
    c.write(bad.subarray(1, 3));
    await sleep(20);
    expect(c.closed).toBe(false);
    c.write(bad.subarray(3));
    await c.waitClosed(10000);
    expect(notifyCode(c.packets[c.packets.length - 1])).toBe(2);
    await waitUntil(() => log.disconnects.length === 1, 10000, 'disconnect event');
    expect(log.disconnects[0].reason).toBe('protocol_error');
  });

  it('answers PING with PONG carrying the same body, and handlers never see either', async () => {
    const { server, port, log } = await engine.start();
    const c = await engine.connect(port);
    const bodies = [Buffer.alloc(0), Buffer.from('abc'), seqBody(9, 64)];
    c.write(frames(bodies.map((b) => [1, b])));
    const got = await c.waitPackets(3);
    expect(got.map((p) => [p.id, p.type, p.body.toString('hex')])).toEqual(bodies.map((b) => [2, 0, b.toString('hex')]));
    await sleep(50);
    expect(log.packets).toHaveLength(0);
    const s = server.stats();
    expect(s.pings).toBe(3);
    expect(s.packetsIn).toBe(3);
    expect(c.closed).toBe(false);
  });

  it('closes with PROTOCOL_ERROR on a PING body over 64 bytes', async () => {
    const { port, log } = await engine.start();
    const c = await engine.connect(port);
    c.write(
      frames([
        [1, Buffer.from('ok')],
        [1, seqBody(1, 65)],
      ]),
    );
    await c.waitClosed(10000);
    expect(c.packets.map((p) => p.id)).toEqual([2, 3]);
    expect(notifyCode(c.packets[1])).toBe(2);
    await waitUntil(() => log.disconnects.length === 1, 10000, 'disconnect event');
    expect(log.disconnects[0].reason).toBe('protocol_error');
  });

  it('ignores and counts system ids other than PING, and keeps the connection', async () => {
    const { server, port, log } = await engine.startEcho();
    const c = await engine.connect(port);
    c.write(
      frames([
        [0, Buffer.from('x')],
        [2, Buffer.alloc(0)],
        [3, Buffer.from([1, 0])],
        [50, Buffer.alloc(10)],
        [99, Buffer.alloc(0)],
        [100, Buffer.from('app')],
      ]),
    );
    const [p] = await c.waitPackets(1);
    expect(p.id).toBe(100);
    expect(p.body.toString()).toBe('app');
    await sleep(50);
    expect(c.packets).toHaveLength(1);
    expect(log.packets.map((q) => q.id)).toEqual([100]);
    const s = server.stats();
    expect(s.ignoredSystemPackets).toBe(5);
    expect(s.packetsIn).toBe(6);
    expect(c.closed).toBe(false);
  });

  it('counts bytes and packets both ways', async () => {
    const { server, port } = await engine.startEcho();
    const c = await engine.connect(port);
    const bytes = frames([
      [100, Buffer.from('12345')],
      [101, Buffer.alloc(100)],
      [1, Buffer.from('p')],
    ]);
    c.write(bytes);
    await c.waitPackets(3);
    if (transport === 'tcp') {
      await waitUntil(() => server.stats().bytesOut === bytes.length, 10000, 'bytesOut');
      expect(server.stats().bytesIn).toBe(bytes.length);
    } else {
      // The upgrade request (over 100 bytes) and response and the frame headers count too: 3 messages each way,
      // the server's frame headers 2 bytes, the client's 6 (masked).
      await waitUntil(() => server.stats().bytesOut > bytes.length + 3 * 2, 10000, 'bytesOut');
      expect(server.stats().bytesIn).toBeGreaterThan(bytes.length + 3 * 6 + 100);
    }
    const s = server.stats();
    expect(s.packetsIn).toBe(3);
    expect(s.packetsOut).toBe(3);
    expect(s.pings).toBe(1);
    expect(s.connections).toBe(1);
    expect(s.accepted).toBe(1);
    expect(s.staleRefused).toBe(0);
  });

  it("reports 'closed' when the peer finishes and 'reset' when it resets", async () => {
    const { server, port, log } = await engine.startEcho();
    const a = await engine.connect(port);
    const b = await engine.connect(port);
    await waitUntil(() => log.connects.length === 2, 10000, 'two connects');
    const [ca, cb] = log.connects[0].remotePort === a.socket.localPort ? log.connects : [log.connects[1], log.connects[0]];
    a.close();
    await a.waitClosed(10000);
    b.socket.resetAndDestroy();
    await waitUntil(() => log.disconnects.length === 2, 10000, 'two disconnects');
    expect(log.reasonsById.get(ca.id)).toEqual(['closed']);
    expect(log.reasonsById.get(cb.id)).toEqual(['reset']);
    await waitUntil(() => server.stats().connections === 0, 10000, 'no connections');
    const s = server.stats();
    expect(s.closes.closed).toBe(1);
    expect(s.closes.reset).toBe(1);
  });
});
