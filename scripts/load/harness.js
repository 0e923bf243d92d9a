'use strict';
// What the load tools in this folder share (soak.js, soak-cluster.js,
// clients-10k.js): their command-line conventions, compiling the TypeScript
// they run, a timestamped log, a chat client connection, the chat server as a
// child process with a raised descriptor limit, and the load generator
// (bench/loadgen) as a child process.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { Command, InvalidArgumentError } = require('commander');

const ROOT = path.resolve(__dirname, '..', '..');

/** @typedef {import('../../bench/scenarios').LoadgenReport} LoadgenReport */
/** @typedef {{ backend: 'native' | 'js', roomUsers: number, nodeFlags?: string, serverLog?: string }} ServerSettings */
/**
 * @typedef {object} ChatServerChild
 * @property {import('node:child_process').ChildProcess} child
 * @property {number} pid
 * @property {number} port
 * @property {string[]} output the last 50 lines it printed
 */
/** @typedef {{ code: number | null, report: LoadgenReport | undefined, stderr: string[] }} LoadgenResult */

// ---- command line ----

/**
 * A commander parser for a number in [min, max].
 * @param {number} min
 * @param {number} max
 * @returns {(value: string) => number}
 */
function numberIn(min, max) {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number between ${min} and ${max}`);
    return n;
  };
}

/**
 * A commander parser for --backend.
 * @param {string} value
 * @returns {'native' | 'js'}
 */
function backendName(value) {
  if (value !== 'native' && value !== 'js') throw new InvalidArgumentError("expected 'native' or 'js'");
  return value;
}

/**
 * A commander program whose usage errors exit with 2, as these scripts promise.
 * @param {string} name
 * @param {string} description
 */
function scriptProgram(name, description) {
  return new Command(name)
    .description(description)
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

// ---- build ----

/**
 * The newest modification time of a .ts file under dir.
 * @param {string} dir
 * @returns {number}
 */
function newest(dir) {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? fs.statSync(p).mtimeMs : 0);
  }
  return t;
}

/** Compiles the TypeScript when dist/ is missing or older than lib/ or bench/. */
function ensureCompiled() {
  const cli = path.join(ROOT, 'dist', 'lib', 'cli.js');
  const helpers = ['loadgen-build.js', 'proc-stats.js'].map((f) => path.join(ROOT, 'dist', 'bench', f));
  const built = [cli, ...helpers].every((f) => fs.existsSync(f)) ? Math.min(...[cli, ...helpers].map((f) => fs.statSync(f).mtimeMs)) : 0;
  if (built >= Math.max(newest(path.join(ROOT, 'lib')), newest(path.join(ROOT, 'bench')))) return;
  log('compiling the TypeScript ...');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  // tsc still writes its output when another part of the project has type errors; what counts is that ours is there.
  if (!fs.existsSync(cli) || !helpers.every((f) => fs.existsSync(f))) {
    throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
  }
  if (r.status !== 0) log('tsc reported errors; using its output anyway');
}

// ---- output ----

const t0 = Date.now();
/** @param {string} line */
function log(line) {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${line}\n`);
}

// ---- the chat protocol, from a client ----

const ID = {
  LOGIN: 201,
  LOGIN_RES: 202,
  ENTER: 206,
  ENTER_RES: 207,
  LEAVE: 209,
  LEAVE_RES: 210,
  CHAT: 214,
  CHAT_RES: 215,
  CHAT_NOTIFY: 216,
  NOTIFY: 3,
};

/**
 * The package's client framing (PacketReader, encodePacket), from the compiled
 * dist/lib/index.js, loaded on first use (after ensureCompiled() has built it).
 * @type {typeof import('../../lib/index') | undefined}
 */
let packageWire;
function wire() {
  packageWire ??= /** @type {typeof import('../../lib/index')} */ (require(path.join(ROOT, 'dist', 'lib', 'index.js')));
  return packageWire;
}

/** @param {string} userId */
function loginBody(userId) {
  const b = Buffer.alloc(42);
  b.write(userId, 0, 20, 'utf8');
  b.write('pw', 21, 'utf8');
  return b;
}

/** @param {number} room */
function enterBody(room) {
  const b = Buffer.alloc(4);
  b.writeInt32LE(room, 0);
  return b;
}

/**
 * What a churn loop of the soaks counts.
 * @typedef {{ stopping: boolean, cycles: number, drops: number, relogins: number, errors: number, lastError: string }} ChurnState
 */

/**
 * One client connection of a load script: sends requests and resolves each
 * with the Result of the first response of the expected id; every other
 * packet goes to onPacket. Rejects them all when the connection fails, the
 * server closes it or sends DISCONNECT_NOTIFY.
 */
class ChatConnection {
  /**
   * @param {net.Socket} socket
   * @param {(id: number, body: Buffer) => void} [onPacket]
   */
  constructor(socket, onPacket) {
    this.socket = socket;
    this.reader = new (wire().PacketReader)();
    /** @type {{ id: number, resolve: (result: number) => void, reject: (err: Error) => void }[]} */
    this.waiting = [];
    /** @type {Promise<void>} */
    this.ended = new Promise((resolve) => {
      socket.on('close', () => {
        for (const w of this.waiting.splice(0)) w.reject(new Error(`closed while waiting for packet ${w.id}`));
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (/** @type {Buffer} */ chunk) => {
      if (this.reader.error) return;
      for (const { packetId: id, body } of this.reader.push(chunk)) {
        const result = body.length >= 2 ? body.readInt16LE(0) : -1;
        if (id === ID.NOTIFY) {
          for (const w of this.waiting.splice(0)) w.reject(new Error(`DISCONNECT_NOTIFY(${result}) from the server`));
          continue;
        }
        const i = this.waiting.findIndex((w) => w.id === id);
        if (i >= 0) this.waiting.splice(i, 1)[0].resolve(result);
        else if (onPacket) onPacket(id, body);
      }
      // A server that breaks the framing: the loop sees the close.
      if (this.reader.error) socket.destroy();
    });
  }

  /**
   * @param {number} port
   * @param {(id: number, body: Buffer) => void} [onPacket] gets every packet that answers no request
   * @returns {Promise<ChatConnection>}
   */
  static open(port, onPacket) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timed out'));
      }, 10000);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new ChatConnection(socket, onPacket));
      });
    });
  }

  /**
   * Sends a request; resolves with the Result of the response.
   * @param {number} id
   * @param {Buffer} body
   * @param {number} responseId
   * @returns {Promise<number>}
   */
  request(id, body, responseId) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response ${responseId} within 10 s`)), 10000);
      this.waiting.push({
        id: responseId,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(wire().encodePacket(id, body));
    });
  }
}

// ---- the server ----

/**
 * Starts `iocpnet chat-server` with a raised descriptor limit.
 * @param {ServerSettings} o
 * @param {number} maxRooms
 * @param {number} maxConnections
 * @param {string[]} [extra] more chat-server flags
 * @returns {Promise<ChatServerChild>}
 */
function startServer(o, maxRooms, maxConnections, extra = []) {
  const args = [
    path.join(ROOT, 'dist', 'lib', 'cli.js'),
    'chat-server',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--backend',
    o.backend,
    '--max-rooms',
    String(maxRooms),
    '--max-room-users',
    String(o.roomUsers),
    '--max-connections',
    String(maxConnections),
    ...extra,
  ];
  // bash execs node, so the pid is the server's and the raised limit is inherited.
  const flags = (o.nodeFlags || '').split(/\s+/).filter(Boolean);
  const child = spawn('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"', 'bash', process.execPath, ...flags, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  /** @type {string[]} */
  const output = [];
  const logFile = o.serverLog ? fs.createWriteStream(o.serverLog) : undefined;
  /** @param {string} line */
  const keep = (line) => {
    if (logFile) logFile.write(`${line}\n`);
    output.push(line);
    if (output.length > 50) output.shift();
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('the server did not print "listening on" within 30 s')), 30000);
    /** @param {Error} err */
    const fail = (err) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${output.join('\n')}`));
    };
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      const m = /listening on (\S+):(\d+)/.exec(line);
      if (m && child.pid !== undefined) {
        clearTimeout(timer);
        resolve({ child, pid: child.pid, port: Number(m[2]), output });
      }
    });
    readline.createInterface({ input: child.stderr }).on('line', keep);
    child.once('exit', (code, signal) => fail(new Error(`the server exited (${signal || code}) before listening`)));
  });
}

/**
 * The process's open descriptors, from /proc.
 * @param {number} pid
 */
function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the load generator: onReady gets its @ready line, onEnd is called at
 * @measure-end, and done resolves with its exit code, its JSON report and what
 * else it printed on stderr.
 * @param {string} binary
 * @param {string[]} args
 * @param {(line: string) => void} onReady
 * @param {() => void} onEnd
 * @returns {{ child: import('node:child_process').ChildProcess, done: Promise<LoadgenResult> }}
 */
function runLoadgen(binary, args, onReady, onEnd) {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  /** @type {string[]} */
  const stderr = [];
  child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.startsWith('@ready')) onReady(line);
    else if (line.startsWith('@measure-end')) onEnd();
    else if (!line.startsWith('@')) stderr.push(line);
  });
  /** @type {Promise<LoadgenResult>} */
  const done = new Promise((resolve) => {
    child.on('close', (code) => {
      /** @type {LoadgenReport | undefined} */
      let report;
      try {
        report = /** @type {LoadgenReport} */ (JSON.parse(stdout));
      } catch {
        report = undefined;
      }
      resolve({ code, report, stderr });
    });
  });
  return { child, done };
}

module.exports = {
  ROOT,
  ensureCompiled,
  startServer,
  fdCount,
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
};
