'use strict';
// A raw TCP client for black-box checks of an installed package: it speaks
// the framing of PROTOCOL.md section 1 with the package's own PacketReader
// and encodePacket and depends on nothing else but Node, so it runs from a
// temporary project without the checkout's dev dependencies.
const net = require('node:net');
const { PacketReader, encodePacket } = require('iocpnet');

/**
 * Writes a NUL-padded fixed-size string field.
 * @param {string} value
 * @param {number} size
 */
function fixedString(value, size) {
  const out = Buffer.alloc(size);
  Buffer.from(value, 'utf8').copy(out, 0, 0, size - 1);
  return out;
}

/**
 * Reads a fixed-size string field: the bytes up to the first NUL.
 * @param {Buffer} buf
 * @param {number} offset
 * @param {number} size
 */
function readFixedString(buf, offset, size) {
  const field = buf.subarray(offset, offset + size);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** @typedef {{ id: number, body: Buffer, seq: number }} Packet */

class WireClient {
  /** @param {net.Socket} socket */
  constructor(socket) {
    this.socket = socket;
    /** @type {Packet[]} received and not yet taken, oldest first */
    this.packets = [];
    this.received = 0;
    this.closed = false;
    this.reader = new PacketReader();
    /** @type {Set<() => void>} */
    this.waiters = new Set();
    socket.setNoDelay(true);
    socket.on('data', (/** @type {Buffer} */ chunk) => {
      // A server that breaks the framing ends the collecting; the socket is dropped.
      if (this.reader.error) return;
      for (const p of this.reader.push(chunk)) this.packets.push({ id: p.packetId, body: p.body, seq: this.received++ });
      if (this.reader.error) socket.destroy();
      this.wake();
    });
    socket.on('error', () => this.wake());
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /**
   * @param {number} port
   * @param {string} [host]
   * @param {number} [timeoutMs]
   * @returns {Promise<WireClient>}
   */
  static connect(port, host = '127.0.0.1', timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new WireClient(socket));
      });
    });
  }

  /**
   * @param {number} id
   * @param {Buffer} [body]
   */
  send(id, body = Buffer.alloc(0)) {
    this.socket.write(encodePacket(id, body));
  }

  /**
   * Resolves with the first received packet (oldest first) that matches, and removes it.
   * @param {(p: Packet) => boolean} match
   * @param {number} [timeoutMs]
   * @param {string} [what] what is awaited, for the error
   * @returns {Promise<Packet>}
   */
  take(match, timeoutMs = 5000, what = 'a packet') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.packets.findIndex(match);
        if (i >= 0) {
          done();
          resolve(this.packets.splice(i, 1)[0]);
        } else if (this.closed) {
          done();
          reject(new Error(`connection closed while waiting for ${what}; received ids ${this.ids()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ids ${this.ids()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  ids() {
    return JSON.stringify(this.packets.map((p) => p.id));
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  close() {
    this.socket.destroy();
  }
}

module.exports = { WireClient, fixedString, readFixedString };
