"""A chat client on Python's websockets (Debian python3-websockets), written
from PROTOCOL.md alone: an independent check of the server's WebSocket
transport. Usage: ws_chat_client.py PORT USER ROOM MESSAGE. It logs in,
enters ROOM, sends MESSAGE, waits for its own ROOM_CHAT_NOTIFY and for one
from another user, closes with code 1000 and prints a JSON report."""

import asyncio
import json
import struct
import sys

import websockets

LOGIN_REQUEST, LOGIN_RESPONSE = 201, 202
ROOM_ENTER_REQUEST, ROOM_ENTER_RESPONSE = 206, 207
ROOM_CHAT_REQUEST, ROOM_CHAT_RESPONSE, ROOM_CHAT_NOTIFY = 214, 215, 216
ROOM_USER_LIST_NOTIFY = 230


def packet(packet_id, body=b""):
    return struct.pack("<HHB", 5 + len(body), packet_id, 0) + body


def char(text, size):
    raw = text.encode("utf-8")
    return raw + b"\0" * (size - len(raw))


def cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8")


class Stream:
    """The packets of the server's binary messages, which may hold several packets or parts of one."""

    def __init__(self, ws):
        self.ws = ws
        self.buf = b""

    async def next(self):
        while True:
            if len(self.buf) >= 5:
                length, packet_id, _type = struct.unpack_from("<HHB", self.buf)
                if len(self.buf) >= length:
                    body = self.buf[5:length]
                    self.buf = self.buf[length:]
                    return packet_id, body
            message = await self.ws.recv()
            if not isinstance(message, bytes):
                raise RuntimeError("the server sent a text message")
            self.buf += message

    async def until(self, wanted, seen):
        while True:
            packet_id, body = await self.next()
            seen.append((packet_id, body))
            if packet_id == wanted:
                return body


async def main(port, user, room, message):
    report = {"notifies": []}
    async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=1 << 16) as ws:
        stream = Stream(ws)
        seen = []
        await ws.send(packet(LOGIN_REQUEST, char(user, 21) + char("", 21)))
        report["login"] = struct.unpack("<H", await stream.until(LOGIN_RESPONSE, seen))[0]
        await ws.send(packet(ROOM_ENTER_REQUEST, struct.pack("<i", room)))
        report["enter"] = struct.unpack_from("<h", await stream.until(ROOM_ENTER_RESPONSE, seen))[0]
        users = await stream.until(ROOM_USER_LIST_NOTIFY, seen)
        count = struct.unpack_from("<H", users)[0]
        report["users"] = [cstr(users[2 + i * 21 : 2 + (i + 1) * 21]) for i in range(count)]
        await ws.send(packet(ROOM_CHAT_REQUEST, char(message, 257)))
        report["chat"] = struct.unpack("<h", await stream.until(ROOM_CHAT_RESPONSE, seen))[0]
        while True:
            for packet_id, body in seen:
                if packet_id == ROOM_CHAT_NOTIFY:
                    report["notifies"].append([cstr(body[:21]), cstr(body[21:])])
            seen = []
            others = [n for n in report["notifies"] if n[0] != user]
            if others and any(n[0] == user for n in report["notifies"]):
                report["peerChat"] = others[0]
                break
            seen.append(await stream.next())
        await ws.close(code=1000)
    print(json.dumps(report))


asyncio.run(asyncio.wait_for(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]), 15))
