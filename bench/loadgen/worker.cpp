#include "worker.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace loadgen {

namespace {
// Large enough for a few dozen packets per read and for any leftover
// partial packet (at most 64 KiB) plus a full read behind it.
constexpr size_t kReadBufferSize = 256 * 1024;
constexpr int kMaxEvents = 512;
}  // namespace

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void Counters::merge(const Counters& o) {
  windowCompleted += o.windowCompleted;
  windowRequests += o.windowRequests;
  windowPacketsIn += o.windowPacketsIn;
  windowBytesIn += o.windowBytesIn;
  windowBytesOut += o.windowBytesOut;
  connectErrors += o.connectErrors;
  setupRetries += o.setupRetries;
  closedByServer += o.closedByServer;
  protocolErrors += o.protocolErrors;
  requestErrors += o.requestErrors;
  timeouts += o.timeouts;
  pingsSent += o.pingsSent;
  pongs += o.pongs;
  for (size_t i = 0; i < disconnectNotify.size(); ++i) disconnectNotify[i] += o.disconnectNotify[i];
  if (o.lastErrno != 0) lastErrno = o.lastErrno;
  if (o.lastResult != 0) lastResult = o.lastResult;
}

Worker::Worker(int workerId, const Options& opts, Shared& sh, std::unique_ptr<Scenario> scenario)
    : id(workerId), options(opts), shared(sh), scenario_(std::move(scenario)), readBuffer_(kReadBufferSize) {
  for (const uint16_t port : options.ports) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    // main() validated the address already.
    inet_pton(AF_INET, options.host.c_str(), &a.sin_addr);
    servers_.push_back(a);
  }
  loopback_ = (ntohl(servers_.front().sin_addr.s_addr) >> 24) == 127;
}

Worker::~Worker() {
  for (auto& c : conns_) close(*c);
  if (epoll_ >= 0) ::close(epoll_);
}

Conn& Worker::addConn(uint32_t index) {
  conns_.push_back(std::make_unique<Conn>());
  conns_.back()->index = index;
  return *conns_.back();
}

void Worker::refreshTimeline() {
  if (warmupStart_ != 0) return;
  const int64_t w = shared.warmupStart.load(std::memory_order_acquire);
  if (w == 0) return;
  // main() stores the window before the warm-up start, so both are visible now.
  windowStart_ = shared.measureStart.load(std::memory_order_relaxed);
  windowEnd_ = shared.measureEnd.load(std::memory_order_relaxed);
  warmupStart_ = w;
}

void Worker::run() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) {
    counters.lastErrno = errno;
    return;
  }
  scenario_->begin(*this, nowNs());
  epoll_event events[kMaxEvents];
  while (!shared.stop.load(std::memory_order_relaxed)) {
    refreshTimeline();
    const int n = epoll_wait(epoll_, events, kMaxEvents, scenario_->idleWaitMs());
    if (n < 0 && errno != EINTR) {
      counters.lastErrno = errno;
      break;
    }
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(events[i].data.ptr);
      if (c.fd >= 0) handleEvent(c, events[i].events, nowNs());
    }
    const int64_t now = nowNs();
    scenario_->onTick(*this, now);
    // Everything queued for a socket during this pass goes out in one write.
    for (size_t i = 0; i < dirty_.size(); ++i) {
      Conn& c = *dirty_[i];
      c.dirty = false;
      if (c.fd >= 0 && !c.connecting && !c.writeBlocked) flush(c, now);
    }
    dirty_.clear();
  }
  for (auto& c : conns_) close(*c);
}

bool Worker::connect(Conn& c) {
  close(c);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ++counters.connectErrors;
    counters.lastErrno = errno;
    return false;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (loopback_ && options.sourceAddresses > 0) {
    // One source address gives at most ~28k ephemeral ports towards one
    // server port; spreading over 127.0.0.x multiplies that. The port is
    // picked at connect() time so that TIME_WAIT ports can be reused.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001u + c.index % static_cast<uint32_t>(options.sourceAddresses));
    if (bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
      ++counters.connectErrors;
      counters.lastErrno = errno;
      ::close(fd);
      return false;
    }
  }
  const sockaddr_in& server = servers_[c.index % servers_.size()];
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0 && errno != EINPROGRESS) {
    ++counters.connectErrors;
    counters.lastErrno = errno;
    ::close(fd);
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &c;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ++counters.connectErrors;
    counters.lastErrno = errno;
    ::close(fd);
    return false;
  }
  c.fd = fd;
  c.connecting = true;
  return true;
}

void Worker::close(Conn& c) {
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
  c.connecting = false;
  c.writeBlocked = false;
  c.pending.clear();
  c.out.clear();
  c.outOffset = 0;
  c.ws = Conn::Ws::Off;
  c.wsFramed = 0;
  c.wsStream.clear();
}

void Worker::shutdownWrite(Conn& c) {
  if (c.fd < 0) return;
  if (!c.writeBlocked) flush(c, nowNs());
  if (c.fd >= 0) ::shutdown(c.fd, SHUT_WR);
}

uint8_t* Worker::append(Conn& c, uint16_t packetId, size_t bodyLength) {
  const size_t at = c.out.size();
  c.out.resize(at + kHeaderSize + bodyLength);
  uint8_t* p = c.out.data() + at;
  writeU16(p, static_cast<uint16_t>(kHeaderSize + bodyLength));
  writeU16(p + 2, packetId);
  p[4] = 0;
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(&c);
  }
  return p + kHeaderSize;
}

void Worker::send(Conn& c, uint16_t packetId, const void* body, size_t bodyLength) {
  uint8_t* p = append(c, packetId, bodyLength);
  if (bodyLength > 0) std::memcpy(p, body, bodyLength);
}

void Worker::handleEvent(Conn& c, uint32_t events, int64_t now) {
  if (c.connecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    finishConnect(c, now);
    if (c.fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readAll(c, now);
  if (c.fd >= 0 && (events & EPOLLOUT) && c.writeBlocked) {
    c.writeBlocked = false;
    flush(c, now);
  }
}

void Worker::finishConnect(Conn& c, int64_t now) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    ++counters.connectErrors;
    fail(c, false, err, now);
    return;
  }
  c.connecting = false;
  if (options.webSocket) {
    // The scenario starts once the server has switched protocols.
    static const char kRequest[] =
        "GET / HTTP/1.1\r\nHost: loadgen\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    c.ws = Conn::Ws::Handshake;
    c.maskSeed = 0x9e3779b9u ^ (c.index * 2654435761u) ^ static_cast<uint32_t>(now);
    if (c.maskSeed == 0) c.maskSeed = 1;
    c.out.insert(c.out.end(), kRequest, kRequest + sizeof kRequest - 1);
    c.wsFramed = c.out.size();
    flush(c, now);
    return;
  }
  scenario_->onConnected(*this, c, now);
}

void Worker::readAll(Conn& c, int64_t now) {
  uint8_t* buf = readBuffer_.data();
  size_t have = c.pending.size();
  if (have > 0) std::memcpy(buf, c.pending.data(), have);
  c.pending.clear();
  for (;;) {
    const size_t room = readBuffer_.size() - have;
    const ssize_t n = recv(c.fd, buf + have, room, 0);
    if (n > 0) {
      now = nowNs();
      if (inWindow(now)) counters.windowBytesIn += static_cast<uint64_t>(n);
      const size_t total = have + static_cast<size_t>(n);
      const size_t used = c.ws == Conn::Ws::Off ? parse(c, buf, total, now) : parseWebSocket(c, buf, total, now);
      if (c.fd < 0) return;
      have = total - used;
      if (have > 0 && used > 0) std::memmove(buf, buf + used, have);
      // A short read means the socket was drained; with edge triggering a
      // later arrival raises a new event.
      if (static_cast<size_t>(n) < room) break;
      continue;
    }
    if (n == 0) {
      fail(c, true, 0, now);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    fail(c, false, errno, now);
    return;
  }
  if (have > 0) c.pending.assign(buf, buf + have);
}

size_t Worker::parse(Conn& c, const uint8_t* data, size_t size, int64_t now) {
  size_t off = 0;
  const bool counting = inWindow(now);
  while (size - off >= kHeaderSize) {
    const uint16_t length = readU16(data + off);
    // The server never sends a non-zero type (PROTOCOL.md section 1).
    if (length < kHeaderSize || data[off + 4] != 0) {
      ++counters.protocolErrors;
      fail(c, false, EPROTO, now);
      return off;
    }
    if (size - off < length) break;
    if (counting) ++counters.windowPacketsIn;
    dispatch(c, readU16(data + off + 2), data + off + kHeaderSize, length - kHeaderSize, now);
    off += length;
    if (c.fd < 0) break;
  }
  return off;
}

void Worker::dispatch(Conn& c, uint16_t packetId, const uint8_t* body, size_t length, int64_t now) {
  switch (packetId) {
    case packet::kPing:
      send(c, packet::kPong, body, length);
      return;
    case packet::kPong:
      ++counters.pongs;
      // The echo scenario's --ping mode times its PINGs by their PONGs.
      scenario_->onPacket(*this, c, packetId, body, length, now);
      return;
    case packet::kDisconnectNotify: {
      const size_t reason = length >= 2 ? readU16(body) : 0;
      ++counters.disconnectNotify[std::min(reason, kDisconnectReasonSlots - 1)];
      return;
    }
    default:
      scenario_->onPacket(*this, c, packetId, body, length, now);
  }
}

void Worker::flush(Conn& c, int64_t now) {
  if (c.ws == Conn::Ws::Open) frameQueued(c);
  while (c.outOffset < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.outOffset, c.out.size() - c.outOffset, MSG_NOSIGNAL);
    if (n > 0) {
      if (inWindow(now)) counters.windowBytesOut += static_cast<uint64_t>(n);
      c.outOffset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.writeBlocked = true;
      return;
    }
    fail(c, false, n < 0 ? errno : EPIPE, now);
    return;
  }
  c.out.clear();
  c.outOffset = 0;
  c.wsFramed = 0;
}

void Worker::frameQueued(Conn& c) {
  const size_t n = c.out.size() - c.wsFramed;
  if (n == 0) return;
  uint8_t header[14];
  size_t h = 0;
  header[h++] = 0x82;  // FIN, binary
  if (n < 126) {
    header[h++] = static_cast<uint8_t>(0x80 | n);
  } else if (n <= 0xFFFF) {
    header[h++] = 0x80 | 126;
    header[h++] = static_cast<uint8_t>(n >> 8);
    header[h++] = static_cast<uint8_t>(n);
  } else {
    header[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) header[h++] = static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i));
  }
  // xorshift32: a new masking key per frame.
  uint32_t s = c.maskSeed;
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  c.maskSeed = s;
  const uint8_t mask[4] = {static_cast<uint8_t>(s), static_cast<uint8_t>(s >> 8), static_cast<uint8_t>(s >> 16),
                           static_cast<uint8_t>(s >> 24)};
  std::memcpy(header + h, mask, 4);
  h += 4;
  c.out.insert(c.out.begin() + static_cast<std::ptrdiff_t>(c.wsFramed), header, header + h);
  uint8_t* p = c.out.data() + c.wsFramed + h;
  for (size_t i = 0; i < n; ++i) p[i] ^= mask[i & 3];
  c.wsFramed = c.out.size();
}

size_t Worker::parseWebSocket(Conn& c, const uint8_t* data, size_t size, int64_t now) {
  size_t off = 0;
  if (c.ws == Conn::Ws::Handshake) {
    const char* text = reinterpret_cast<const char*>(data);
    const std::string_view head(text, size);
    const size_t end = head.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (size >= 8192) {
        ++counters.protocolErrors;
        fail(c, false, EPROTO, now);
      }
      return 0;
    }
    if (head.compare(0, 13, "HTTP/1.1 101 ") != 0) {
      ++counters.protocolErrors;
      fail(c, false, EPROTO, now);
      return 0;
    }
    c.ws = Conn::Ws::Open;
    off = end + 4;
    scenario_->onConnected(*this, c, now);
    if (c.fd < 0) return off;
  }
  return off + parseFrames(c, data + off, size - off, now);
}

size_t Worker::parseFrames(Conn& c, const uint8_t* data, size_t size, int64_t now) {
  size_t off = 0;
  while (size - off >= 2) {
    const uint8_t* f = data + off;
    // The server's frames are unmasked and final (it sends whole packets per frame).
    if ((f[1] & 0x80) != 0 || (f[0] & 0x70) != 0) {
      ++counters.protocolErrors;
      fail(c, false, EPROTO, now);
      return off;
    }
    size_t h = 2;
    uint64_t len = f[1] & 0x7F;
    if (len == 126) {
      if (size - off < 4) break;
      len = (static_cast<uint64_t>(f[2]) << 8) | f[3];
      h = 4;
    } else if (len == 127) {
      if (size - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | f[2 + i];
      h = 10;
    }
    // A frame longer than the read buffer could never complete: the engine's are at most a packet.
    if (len > kReadBufferSize / 2) {
      ++counters.protocolErrors;
      fail(c, false, EPROTO, now);
      return off;
    }
    if (size - off - h < len) break;
    const uint8_t opcode = f[0] & 0x0F;
    if (opcode == 0x2 || opcode == 0x0) {
      parsePayload(c, f + h, static_cast<size_t>(len), now);
      if (c.fd < 0) return off;
    }
    // CLOSE: the server's FIN follows; PING and PONG: the engine sends none.
    off += h + static_cast<size_t>(len);
  }
  return off;
}

void Worker::parsePayload(Conn& c, const uint8_t* data, size_t size, int64_t now) {
  if (c.wsStream.empty()) {
    // The usual case: whole packets in the frame, parsed where they are.
    const size_t used = parse(c, data, size, now);
    if (c.fd >= 0 && used < size) c.wsStream.assign(data + used, data + size);
    return;
  }
  c.wsStream.insert(c.wsStream.end(), data, data + size);
  std::vector<uint8_t> stream;
  stream.swap(c.wsStream);
  const size_t used = parse(c, stream.data(), stream.size(), now);
  if (c.fd >= 0 && used < stream.size())
    c.wsStream.assign(stream.begin() + static_cast<std::ptrdiff_t>(used), stream.end());
}

void Worker::fail(Conn& c, bool eof, int err, int64_t now) {
  if (!eof && err != 0) counters.lastErrno = err;
  close(c);
  scenario_->onClosed(*this, c, eof, now);
}

}  // namespace loadgen
