/**
 * The web chat client served at GET /chat: one static page, no external
 * resource, that speaks the chat protocol (PROTOCOL.md section 3) to the chat
 * server over WebSocket, in the same 5-byte framing as the terminal client.
 * It logs in, enters a room, shows the room's members and its chat, and
 * sends chats. Which server to reach is its `port` query parameter, else the
 * chat port the HTTP server was told of (chatPage()); the host is the page's.
 */
import { DisconnectCode, HEADER_SIZE, PacketId } from '../contract';
import { ChatPacketId, ChatResult, MESSAGE_FIELD, PASSWORD_FIELD, USER_ID_FIELD } from '../chat/packets';

/** The page, with the chat server's port (null: the page asks for ?port=) filled in. */
export function chatPage(chatPort: number | null): string {
  const config = {
    port: chatPort,
    header: HEADER_SIZE,
    ids: ChatPacketId,
    system: PacketId,
    results: ChatResult,
    disconnect: DisconnectCode,
    userIdField: USER_ID_FIELD,
    passwordField: PASSWORD_FIELD,
    messageField: MESSAGE_FIELD,
  };
  // JSON in a script element: '<' escaped so that no value can end the element.
  return CHAT_HTML.replace('__CONFIG__', JSON.stringify(config).replace(/</g, '\\u003c'));
}

const CHAT_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iocpnet chat</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg: #0f1419; --panel: #1a2129; --fg: #e6e6e6; --dim: #8a96a3; --line: #2a333d; --a: #4fc3f7; --ok: #81c784; --bad: #e57373; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); height: 100vh; display: flex; flex-direction: column; }
  header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: var(--panel); border-bottom: 1px solid var(--line); }
  header h1 { font-size: 17px; margin: 0; }
  #status { color: var(--dim); } #status.ok { color: var(--ok); } #status.bad { color: var(--bad); }
  form { display: flex; gap: 8px; padding: 10px 16px; align-items: center; }
  input, button { font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 5px 8px; }
  button { background: var(--panel); cursor: pointer; } button:disabled { opacity: .5; cursor: default; }
  main { flex: 1; display: grid; grid-template-columns: 1fr 200px; gap: 0; min-height: 0; border-top: 1px solid var(--line); }
  #log { overflow-y: auto; padding: 10px 16px; margin: 0; list-style: none; }
  #log li { padding: 2px 0; white-space: pre-wrap; word-break: break-word; }
  #log .who { color: var(--a); font-weight: 600; } #log .sys { color: var(--dim); font-style: italic; } #log .err { color: var(--bad); }
  aside { border-left: 1px solid var(--line); padding: 10px 14px; overflow-y: auto; }
  aside h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--dim); margin: 0 0 6px; font-weight: 500; }
  #members { list-style: none; margin: 0; padding: 0; } #members li.me { color: var(--a); }
  #say { border-top: 1px solid var(--line); } #say input { flex: 1; }
</style>
</head>
<body>
<header><h1>iocpnet chat</h1><span id="status">not connected</span><span id="room"></span></header>
<form id="join">
  <label>User <input id="user" maxlength="20" autocomplete="off" required></label>
  <label>Room <input id="roomNumber" type="number" min="0" value="0" style="width: 6em" required></label>
  <button id="joinButton" type="submit">Join</button>
  <button id="leaveButton" type="button" disabled>Leave</button>
</form>
<main>
  <ul id="log" aria-live="polite"></ul>
  <aside><h2>In the room</h2><ul id="members"></ul></aside>
</main>
<form id="say"><input id="message" autocomplete="off" placeholder="Say something" disabled><button id="sayButton" type="submit" disabled>Send</button></form>
<script id="config" type="application/json">__CONFIG__</script>
<script>
'use strict';
const C = JSON.parse(document.getElementById('config').textContent);
const P = C.ids;
const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const dec = new TextDecoder();
const resultName = (code) => Object.keys(C.results).find((k) => C.results[k] === code) || 'UNKNOWN(' + code + ')';

let ws = null;
let inbox = new Uint8Array(0);
let me = '';
let pinger = 0;
const members = new Set();

function setStatus(text, cls) {
  const s = $('status');
  s.textContent = text;
  s.className = cls || '';
}

function log(text, cls, who) {
  const li = document.createElement('li');
  if (cls) li.className = cls;
  if (who !== undefined) {
    const b = document.createElement('span');
    b.className = 'who';
    b.textContent = who + ': ';
    li.appendChild(b);
  }
  li.appendChild(document.createTextNode(text));
  $('log').appendChild(li);
  li.scrollIntoView({ block: 'end' });
}

function drawMembers() {
  const ul = $('members');
  ul.textContent = '';
  for (const id of [...members].sort()) {
    const li = document.createElement('li');
    li.textContent = id;
    if (id === me) li.className = 'me';
    ul.appendChild(li);
  }
}

/** A fixed-size char field: UTF-8, zero-padded (PROTOCOL.md section 3). */
function charField(text, size) {
  const out = new Uint8Array(size);
  out.set(enc.encode(text).subarray(0, size));
  return out;
}

/** A char field's value: the bytes before the first zero. */
function charValue(bytes) {
  const end = bytes.indexOf(0);
  return dec.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** One packet: u16 length (header included), u16 id, u8 type 0, body; all little-endian. */
function packet(id, body) {
  const b = body || new Uint8Array(0);
  const out = new Uint8Array(C.header + b.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, out.length, true);
  v.setUint16(2, id, true);
  out.set(b, C.header);
  return out;
}

function send(id, body) {
  if (ws !== null && ws.readyState === WebSocket.OPEN) ws.send(packet(id, body));
}

function i32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return b;
}

/** A binary message's bytes join the stream; each whole packet in it is handled. */
function receive(data) {
  const chunk = new Uint8Array(data);
  const all = new Uint8Array(inbox.length + chunk.length);
  all.set(inbox);
  all.set(chunk, inbox.length);
  let pos = 0;
  while (all.length - pos >= C.header) {
    const v = new DataView(all.buffer, all.byteOffset + pos);
    const length = v.getUint16(0, true);
    if (length < C.header) { log('the server broke the framing', 'err'); ws.close(); return; }
    if (all.length - pos < length) break;
    handle(v.getUint16(2, true), all.subarray(pos + C.header, pos + length));
    pos += length;
  }
  inbox = all.slice(pos);
}

function handle(id, body) {
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const U = C.userIdField;
  switch (id) {
    case P.LOGIN_RESPONSE: {
      const r = v.getUint16(0, true);
      if (r !== 0) { log('login refused: ' + resultName(r), 'err'); ws.close(1000); return; }
      send(P.ROOM_ENTER_REQUEST, i32(Number($('roomNumber').value)));
      return;
    }
    case P.ROOM_ENTER_RESPONSE: {
      const r = v.getInt16(0, true);
      if (r !== 0) { log('cannot enter the room: ' + resultName(r), 'err'); ws.close(1000); return; }
      $('room').textContent = 'room ' + $('roomNumber').value;
      setStatus('in the room as ' + me, 'ok');
      $('message').disabled = $('sayButton').disabled = $('leaveButton').disabled = false;
      $('message').focus();
      return;
    }
    case P.ROOM_USER_LIST_NOTIFY: {
      members.clear();
      const n = v.getUint16(0, true);
      for (let i = 0; i < n; i++) members.add(charValue(body.subarray(2 + i * U, 2 + (i + 1) * U)));
      drawMembers();
      return;
    }
    case P.ROOM_NEW_USER_NOTIFY: {
      const who = charValue(body.subarray(0, U));
      members.add(who);
      drawMembers();
      log(who + ' joined', 'sys');
      return;
    }
    case P.ROOM_LEAVE_USER_NOTIFY: {
      const who = charValue(body.subarray(0, U));
      members.delete(who);
      drawMembers();
      log(who + ' left', 'sys');
      return;
    }
    case P.ROOM_CHAT_NOTIFY:
      log(charValue(body.subarray(U)), '', charValue(body.subarray(0, U)));
      return;
    case P.ROOM_CHAT_RESPONSE: {
      const r = v.getInt16(0, true);
      if (r !== 0) log('not sent: ' + resultName(r), 'err');
      return;
    }
    case P.ROOM_LEAVE_RESPONSE:
      ws.close(1000);
      return;
    case C.system.DISCONNECT_NOTIFY: {
      const code = v.getUint16(0, true);
      const name = Object.keys(C.disconnect).find((k) => C.disconnect[k] === code) || String(code);
      log('the server closed the connection: ' + name, 'err');
      return;
    }
    default:
      return;
  }
}

function ended() {
  ws = null;
  clearInterval(pinger);
  members.clear();
  drawMembers();
  $('room').textContent = '';
  $('message').disabled = $('sayButton').disabled = $('leaveButton').disabled = true;
  $('joinButton').disabled = $('user').disabled = $('roomNumber').disabled = false;
}

$('join').addEventListener('submit', (e) => {
  e.preventDefault();
  if (ws !== null) return;
  const port = new URLSearchParams(location.search).get('port') || C.port;
  if (!port) { setStatus('no chat server port: open this page as /chat?port=N', 'bad'); return; }
  me = $('user').value.trim();
  if (me === '') return;
  $('joinButton').disabled = $('user').disabled = $('roomNumber').disabled = true;
  $('log').textContent = '';
  inbox = new Uint8Array(0);
  setStatus('connecting…');
  const host = location.hostname.includes(':') ? '[' + location.hostname + ']' : location.hostname;
  ws = new WebSocket('ws://' + host + ':' + port + '/');
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    setStatus('logging in…');
    const login = new Uint8Array(C.userIdField + C.passwordField);
    login.set(charField(me, C.userIdField));
    send(P.LOGIN_REQUEST, login);
    // A PING now and then keeps an idle tab within the server's idle timeout.
    pinger = setInterval(() => send(C.system.PING), 15000);
  };
  ws.onmessage = (m) => {
    if (typeof m.data === 'string') { log('the server sent text', 'err'); return; }
    receive(m.data);
  };
  ws.onclose = (e) => {
    setStatus('disconnected' + (e.code !== 1000 && e.code !== 1005 ? ' (' + e.code + ')' : ''), e.code === 1000 ? '' : 'bad');
    ended();
  };
});

$('leaveButton').addEventListener('click', () => send(P.ROOM_LEAVE_REQUEST));

$('say').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('message').value;
  if (text === '') return;
  const bytes = enc.encode(text);
  if (bytes.length > C.messageField) { log('too long: at most ' + C.messageField + ' bytes', 'err'); return; }
  send(P.ROOM_CHAT_REQUEST, charField(text, C.messageField));
  $('message').value = '';
});
</script>
</body>
</html>
`;
