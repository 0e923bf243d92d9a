import { describe, expect, it } from 'vitest';
import type { Backend, BackendSink } from '../lib/backends/backend';
import { JsBackend } from '../lib/backends/js/js-backend';
import { NativeBackend } from '../lib/backends/native/native-backend';
import type { DisconnectReason } from '../lib/contract';
import { resolveServerOptions } from '../lib/server/options';
import type { BackendName } from '../lib/server/types';
import { waitUntil } from './helpers/engine-harness';
import { RawClient, backends } from './helpers/raw-client';

/** What the Server does as a backend's sink, reduced to a log: it flushes after each batch. */
class Recorder implements BackendSink {
  backend: Backend | undefined;
  readonly connects: Array<{ id: number; port: number }> = [];
  readonly disconnects = new Map<number, DisconnectReason>();
  onConnect(id: number, _address: string, port: number): void {
    this.connects.push({ id, port });
  }
  onPacket(): void {}
  onDisconnect(id: number, reason: DisconnectReason): void {
    this.disconnects.set(id, reason);
  }
  onBatchEnd(): void {
    this.backend?.flush();
  }
}

type Step = [what: string, returned: unknown];

/**
 * Calls a backend the way the Server would, and more: ids never open,
 * closed by the application, ended by the engine before JS heard of it,
 * reported gone. Returns what each call returned.
 */
async function runScript(name: BackendName): Promise<Step[]> {
  const options = resolveServerOptions({ backend: name, ioThreads: 2, maxSendQueueBytes: 1024, idleTimeoutMs: 0 });
  const sink = new Recorder();
  const backend: Backend = name === 'js' ? new JsBackend(options, sink) : new NativeBackend(options, sink);
  sink.backend = backend;
  const clients: RawClient[] = [];
  const steps: Step[] = [];
  const step = (what: string, returned: unknown): void => void steps.push([what, returned]);
  try {
    const { port } = await backend.listen(0, '127.0.0.1');
    for (let i = 0; i < 4; i++) clients.push(await RawClient.connect(port));
    await waitUntil(() => sink.connects.length === 4, 10000, 'four connects');
    const idOf = (client: RawClient): number => sink.connects.find((x) => x.port === client.socket.localPort)!.id;
    const [a, b, c, d] = clients.map(idOf);
    const body = Buffer.from('x');
    const never = 0; // no engine numbers a connection 0

    step('send to an open id', backend.send(a, 500, body));
    step('send to an id never open', backend.send(never, 500, body));
    step('broadcast to a, b, c and an id never open', backend.broadcast([a, b, c, never], 501, body));
    step('close b', backend.closeConnection(b, 'close'));
    step('send to b after closing it', backend.send(b, 502, body));
    step('close b again', backend.closeConnection(b, 'close'));
    step('destroy b after closing it', backend.closeConnection(b, 'destroy'));
    step('broadcast to a, b, c', backend.broadcast([a, b, c], 503, body));
    step('destroy c', backend.closeConnection(c, 'destroy'));
    step('send to c after destroying it', backend.send(c, 504, body));
    step('broadcast to a, a, c', backend.broadcast([a, a, c], 505, body));
    backend.flush();
    await waitUntil(() => sink.disconnects.has(b) && sink.disconnects.has(c), 10000, 'the disconnects of b and c');
    step('send to b after its disconnect', backend.send(b, 506, body));
    step('close c after its disconnect', backend.closeConnection(c, 'close'));

    // d reads nothing: the engine ends it as a slow consumer, and JS hears of that only later.
    clients[3].socket.pause();
    const big = Buffer.alloc(60000, 7);
    let accepted = 0;
    for (let i = 0; i < 300; i++) if (backend.send(d, 600, big)) accepted++;
    step('sends to d, far past maxSendQueueBytes', accepted);
    step('broadcast to a and d in the same run', backend.broadcast([a, d], 601, body));
    backend.flush();
    await waitUntil(() => sink.disconnects.has(d), 20000, 'the disconnect of d');
    step('the reason reported for d', sink.disconnects.get(d));
    step('send to d after its disconnect', backend.send(d, 602, body));
    step('broadcast to a and d after that', backend.broadcast([a, d], 603, body));

    // The shutdown ends every connection; JS hears of it only after close() returned.
    const closing = backend.close();
    step('send to a as the shutdown begins', backend.send(a, 700, body));
    step('broadcast to a as the shutdown begins', backend.broadcast([a], 701, body));
    step('close a as the shutdown begins', backend.closeConnection(a, 'close'));
    step('send to a after closing it', backend.send(a, 702, body));
    await closing;
    step('send to a once close() resolved', backend.send(a, 703, body));
    // The application's close came before JS heard of the shutdown's: it is the reason, once, on both.
    step('the reason reported for a', sink.disconnects.get(a));
    step('closes counted by reason', JSON.stringify(backend.stats().closes));
  } finally {
    for (const client of clients) client.destroy();
    await backend.close();
  }
  return steps;
}

const EXPECTED: Step[] = [
  ['send to an open id', true],
  ['send to an id never open', false],
  ['broadcast to a, b, c and an id never open', 3],
  ['close b', true],
  ['send to b after closing it', false],
  ['close b again', false],
  ['destroy b after closing it', false],
  ['broadcast to a, b, c', 2],
  ['destroy c', true],
  ['send to c after destroying it', false],
  ['broadcast to a, a, c', 2],
  ['send to b after its disconnect', false],
  ['close c after its disconnect', false],
  ['sends to d, far past maxSendQueueBytes', 300],
  ['broadcast to a and d in the same run', 2],
  ['the reason reported for d', 'slow_consumer'],
  ['send to d after its disconnect', false],
  ['broadcast to a and d after that', 1],
  ['send to a as the shutdown begins', true],
  ['broadcast to a as the shutdown begins', 1],
  ['close a as the shutdown begins', true],
  ['send to a after closing it', false],
  ['send to a once close() resolved', false],
  ['the reason reported for a', 'kicked'],
  [
    'closes counted by reason',
    JSON.stringify({
      closed: 0,
      reset: 0,
      protocol_error: 0,
      idle_timeout: 0,
      slow_consumer: 1,
      server_full: 0,
      shutdown: 0,
      kicked: 3,
      upgrade_refused: 0,
      upgrade_timeout: 0,
    }),
  ],
];

describe('send, broadcast and closeConnection return the same on every backend', () => {
  it('for one script of sends, broadcasts, closes and destroys, against open, closed, ending and gone ids', async () => {
    const results = new Map<BackendName, Step[]>();
    for (const name of backends()) results.set(name, await runScript(name));
    for (const [name, steps] of results) expect({ backend: name, steps }).toEqual({ backend: name, steps: EXPECTED });
    const [first, ...others] = [...results.values()];
    for (const steps of others) expect(steps).toEqual(first);
  }, 60000);
});
