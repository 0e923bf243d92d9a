// The benchmark's yardstick: the chat and echo servers of the benchmark as
// the simplest fast program serves them. One thread, level-triggered epoll,
// every buffer allocated at start-up (no allocation in the loop), one inbound
// and one outbound buffer per connection, notifies copied into each
// receiver's outbound buffer, and one send per connection per loop turn.
//
// It is not iocpnet and not part of the package: it speaks the wire protocol
// of PROTOCOL.md for what the benchmark's load generator uses (PING/PONG,
// LOGIN, ROOM_ENTER with its list and new-user notifies, ROOM_LEAVE,
// ROOM_CHAT with its response and a notify to every member; in echo mode
// every application packet back to its sender), so that
// `bench/run.ts --backends native,reference` measures how much of the
// machine the native backend leaves unused. Linux only.
//
//   iocpnet-reference --mode chat|echo --port 0 [--host 127.0.0.1]
//       [--max-connections N] [--start-room N] [--max-rooms N] [--max-room-users N]
//
// Prints "listening on HOST:PORT"; SIGTERM or SIGINT ends it. Left out, as
// the benchmark does not use them: idle timeouts, the chat rate limit,
// flow control (a receiver whose outbound buffer would pass 1 MiB is closed,
// as the engine closes a slow consumer), UTF-8 checks of user ids.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr size_t kHeader = 5;
constexpr size_t kMaxPacket = 8192;
constexpr size_t kInCapacity = 64 * 1024;
constexpr size_t kOutCapacity = 1024 * 1024;
constexpr size_t kIdField = 21;
constexpr size_t kPwField = 21;
constexpr size_t kMsgField = 257;
constexpr size_t kMaxPingBody = 64;
constexpr size_t kMaxUserList = (kMaxPacket - kHeader - 2) / kIdField;
constexpr int kMaxEvents = 1024;

enum : uint16_t {
  kPing = 1,
  kPong = 2,
  kDisconnectNotify = 3,
  kLoginRequest = 201,
  kLoginResponse = 202,
  kRoomEnterRequest = 206,
  kRoomEnterResponse = 207,
  kRoomLeaveRequest = 209,
  kRoomLeaveResponse = 210,
  kRoomChatRequest = 214,
  kRoomChatResponse = 215,
  kRoomChatNotify = 216,
  kRoomUserListNotify = 230,
  kRoomNewUserNotify = 231,
  kRoomLeaveUserNotify = 232,
};

enum : int16_t {
  kOk = 0,
  kLoginAlready = 31,
  kLoginAllUsed = 32,
  kLoginInvalidId = 33,
  kEnterInvalidStatus = 52,
  kEnterFull = 54,
  kRoomInvalidIndex = 61,
  kLeaveInvalidRoom = 71,
  kChatInvalidRoom = 81,
};

enum : uint16_t { kReasonShutdown = 1, kReasonProtocol = 2, kReasonServerFull = 4 };

struct Conn {
  int fd = -1;
  uint32_t generation = 0;
  uint32_t inLength = 0;
  uint32_t outStart = 0;  // bytes of out already written (after a partial send)
  uint32_t outLength = 0;
  bool dirty = false;
  bool waitingWritable = false;
  bool loggedIn = false;
  uint8_t idLength = 0;
  int32_t room = -1;  // index into rooms, -1 when in none
  uint32_t roomSlot = 0;
  char id[kIdField] = {};
  uint8_t* in = nullptr;
  uint8_t* out = nullptr;
};

struct Options {
  bool echo = false;
  const char* host = "127.0.0.1";
  int port = 0;
  int maxConnections = 1024;
  int startRoom = 0;
  int maxRooms = 10;
  int maxRoomUsers = 10;
};

volatile sig_atomic_t stopping = 0;

void onSignal(int) { stopping = 1; }

uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void writeU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "iocpnet-reference: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

[[noreturn]] void usage(const char* why, const char* arg) {
  std::fprintf(
      stderr,
      "iocpnet-reference: %s %s\nusage: iocpnet-reference --mode chat|echo --port P [--host A] [--max-connections N]\n"
      "       [--start-room N] [--max-rooms N] [--max-room-users N]\n",
      why, arg);
  std::exit(2);
}

int intArg(const char* name, const char* text, long min, long max) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max) usage("bad value for", name);
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const char* k = argv[i];
    if (i + 1 >= argc) usage("missing value for", k);
    const char* v = argv[i + 1];
    if (!std::strcmp(k, "--mode")) {
      if (!std::strcmp(v, "echo")) o.echo = true;
      else if (std::strcmp(v, "chat") != 0) usage("unknown mode", v);
    } else if (!std::strcmp(k, "--host")) {
      o.host = v;
    } else if (!std::strcmp(k, "--port")) {
      o.port = intArg(k, v, 0, 65535);
    } else if (!std::strcmp(k, "--max-connections")) {
      o.maxConnections = intArg(k, v, 1, 1000000);
    } else if (!std::strcmp(k, "--start-room")) {
      o.startRoom = intArg(k, v, -1000000000, 1000000000);
    } else if (!std::strcmp(k, "--max-rooms")) {
      o.maxRooms = intArg(k, v, 1, 1000000);
    } else if (!std::strcmp(k, "--max-room-users")) {
      o.maxRoomUsers = intArg(k, v, 1, static_cast<long>(kMaxUserList));
    } else {
      usage("unknown option", k);
    }
  }
  return o;
}

// Memory reserved once: pages are touched only as connections use them.
uint8_t* reserve(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  return static_cast<uint8_t*>(p);
}

class Server {
 public:
  explicit Server(const Options& o) : o_(o) {
    // Descriptors are connection indexes: room for the connections and the few others open.
    slots_ = static_cast<size_t>(o.maxConnections) + 64;
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < slots_) {
      lim.rlim_cur = lim.rlim_max < slots_ ? lim.rlim_max : slots_;
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    conns_.resize(slots_);
    inMemory_ = reserve(slots_ * kInCapacity);
    outMemory_ = reserve(slots_ * kOutCapacity);
    for (size_t i = 0; i < slots_; ++i) {
      conns_[i].in = inMemory_ + i * kInCapacity;
      conns_[i].out = outMemory_ + i * kOutCapacity;
    }
    dirty_.reserve(slots_);
    rooms_.assign(static_cast<size_t>(o.maxRooms) * static_cast<size_t>(o.maxRoomUsers), -1);
    roomCounts_.assign(static_cast<size_t>(o.maxRooms), 0);
    size_t cap = 1;
    while (cap < 2 * static_cast<size_t>(o.maxConnections)) cap <<= 1;
    ids_.assign(cap, -1);
    idMask_ = cap - 1;
  }

  void listen() {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listenFd_ < 0) die("socket");
    int one = 1;
    ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o_.port));
    if (::inet_pton(AF_INET, o_.host, &a.sin_addr) != 1) usage("not an IPv4 address:", o_.host);
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
    if (::listen(listenFd_, 511) != 0) die("listen");
    socklen_t len = sizeof a;
    ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len);
    epollFd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epollFd_ < 0) die("epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    if (::epoll_ctl(epollFd_, EPOLL_CTL_ADD, listenFd_, &ev) != 0) die("epoll_ctl");
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    std::printf("iocpnet reference server (%s, yardstick) listening on %s:%u\n", o_.echo ? "echo" : "chat", text,
                ntohs(a.sin_port));
    std::fflush(stdout);
  }

  void run() {
    epoll_event events[kMaxEvents];
    while (!stopping) {
      int n = ::epoll_wait(epollFd_, events, kMaxEvents, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t key = events[i].data.u64;
        if (key == UINT64_MAX) {
          acceptAll();
          continue;
        }
        const int fd = static_cast<int>(key & 0xffffffffu);
        Conn& c = conns_[static_cast<size_t>(fd)];
        // A connection closed earlier in this turn (its descriptor maybe reused since) is skipped.
        if (c.fd != fd || c.generation != static_cast<uint32_t>(key >> 32)) continue;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) {
          closeConn(c);
          continue;
        }
        if (events[i].events & EPOLLOUT) markDirty(c);
        if (events[i].events & EPOLLIN) readFrom(c);
      }
      flushAll();
    }
    for (Conn& c : conns_) {
      if (c.fd < 0) continue;
      uint8_t* b = reply(c, kDisconnectNotify, 2);
      if (b != nullptr) writeU16(b, kReasonShutdown);
      if (c.fd >= 0) {
        ::send(c.fd, c.out + c.outStart, c.outLength - c.outStart, MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(c.fd);
      }
    }
  }

 private:
  void acceptAll() {
    for (int k = 0; k < 128; ++k) {
      int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: level-triggered, so it comes back
      if (open_ >= o_.maxConnections || static_cast<size_t>(fd) >= slots_) {
        uint8_t notify[kHeader + 2];
        writeU16(notify, sizeof notify);
        writeU16(notify + 2, kDisconnectNotify);
        notify[4] = 0;
        writeU16(notify + kHeader, kReasonServerFull);
        ::send(fd, notify, sizeof notify, MSG_NOSIGNAL);
        ::close(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      Conn& c = conns_[static_cast<size_t>(fd)];
      c.fd = fd;
      ++c.generation;
      c.inLength = c.outStart = c.outLength = 0;
      c.dirty = c.waitingWritable = c.loggedIn = false;
      c.idLength = 0;
      c.room = -1;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = (static_cast<uint64_t>(c.generation) << 32) | static_cast<uint32_t>(fd);
      if (::epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        c.fd = -1;
        continue;
      }
      ++open_;
    }
  }

  void readFrom(Conn& c) {
    ssize_t n = ::recv(c.fd, c.in + c.inLength, kInCapacity - c.inLength, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      closeConn(c);
      return;
    }
    if (n < 0) return;
    c.inLength += static_cast<uint32_t>(n);
    size_t at = 0;
    const int fd = c.fd;
    while (c.fd == fd && c.inLength - at >= kHeader) {
      const uint8_t* p = c.in + at;
      const size_t length = readU16(p);
      if (length < kHeader || length > kMaxPacket || p[4] != 0) {
        protocolError(c);
        return;
      }
      if (c.inLength - at < length) break;
      handle(c, readU16(p + 2), p + kHeader, length - kHeader);
      at += length;
    }
    if (c.fd != fd) return;  // closed by a handler
    if (at > 0) {
      std::memmove(c.in, c.in + at, c.inLength - at);
      c.inLength -= static_cast<uint32_t>(at);
    }
  }

  void handle(Conn& c, uint16_t id, const uint8_t* body, size_t length) {
    if (id < 100) {
      if (id == kPing && length <= kMaxPingBody) {
        uint8_t* b = reply(c, kPong, length);
        if (b != nullptr) std::memcpy(b, body, length);
      }
      return;
    }
    if (o_.echo) {
      uint8_t* b = reply(c, id, length);
      if (b != nullptr) std::memcpy(b, body, length);
      return;
    }
    switch (id) {
      case kLoginRequest:
        if (length > kIdField + kPwField) return protocolError(c);
        return login(c, body, length);
      case kRoomEnterRequest: {
        if (length > 4) return protocolError(c);
        uint8_t number[4] = {};
        std::memcpy(number, body, length);
        const int32_t room = static_cast<int32_t>(number[0] | (number[1] << 8) | (number[2] << 16) |
                                                  (static_cast<uint32_t>(number[3]) << 24));
        return enter(c, room);
      }
      case kRoomLeaveRequest:
        if (length != 0) return protocolError(c);
        if (c.room < 0) return result(c, kRoomLeaveResponse, kLeaveInvalidRoom);
        result(c, kRoomLeaveResponse, kOk);
        return leave(c);
      case kRoomChatRequest:
        if (length > kMsgField) return protocolError(c);
        return chat(c, body, length);
      default:
        return;  // unknown ids are ignored
    }
  }

  void login(Conn& c, const uint8_t* body, size_t length) {
    size_t n = 0;
    while (n < length && n < kIdField && body[n] != 0) ++n;
    bool valid = n >= 1 && n < kIdField;
    for (size_t i = 0; valid && i < n; ++i) valid = body[i] >= 0x20 && body[i] != 0x7f;
    if (!valid) return result(c, kLoginResponse, kLoginInvalidId);
    if (c.loggedIn) return result(c, kLoginResponse, kLoginAlready);
    size_t slot = findId(reinterpret_cast<const char*>(body), n);
    if (ids_[slot] >= 0) return result(c, kLoginResponse, kLoginAlready);
    if (users_ >= o_.maxConnections) return result(c, kLoginResponse, kLoginAllUsed);
    std::memcpy(c.id, body, n);
    std::memset(c.id + n, 0, kIdField - n);
    c.idLength = static_cast<uint8_t>(n);
    c.loggedIn = true;
    ids_[slot] = c.fd;
    ++users_;
    result(c, kLoginResponse, kOk);
  }

  void enter(Conn& c, int32_t number) {
    if (!c.loggedIn || c.room >= 0) return enterResult(c, kEnterInvalidStatus);
    const int64_t index = static_cast<int64_t>(number) - o_.startRoom;
    if (index < 0 || index >= o_.maxRooms) return enterResult(c, kRoomInvalidIndex);
    const size_t r = static_cast<size_t>(index);
    int* members = &rooms_[r * static_cast<size_t>(o_.maxRoomUsers)];
    uint32_t& count = roomCounts_[r];
    if (count >= static_cast<uint32_t>(o_.maxRoomUsers)) return enterResult(c, kEnterFull);
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t* b = reply(conns_[static_cast<size_t>(members[i])], kRoomNewUserNotify, kIdField);
      if (b != nullptr) std::memcpy(b, c.id, kIdField);
    }
    uint8_t* b = reply(c, kRoomEnterResponse, 2 + kIdField);
    if (b == nullptr) return;
    writeU16(b, kOk);
    if (count > 0) std::memcpy(b + 2, conns_[static_cast<size_t>(members[0])].id, kIdField);
    else std::memset(b + 2, 0, kIdField);
    c.room = static_cast<int32_t>(r);
    c.roomSlot = count;
    members[count++] = c.fd;
    b = reply(c, kRoomUserListNotify, 2 + kIdField * count);
    if (b == nullptr) return;
    writeU16(b, static_cast<uint16_t>(count));
    for (uint32_t i = 0; i < count; ++i)
      std::memcpy(b + 2 + i * kIdField, conns_[static_cast<size_t>(members[i])].id, kIdField);
  }

  void enterResult(Conn& c, int16_t code) {
    uint8_t* b = reply(c, kRoomEnterResponse, 2 + kIdField);
    if (b == nullptr) return;
    writeU16(b, static_cast<uint16_t>(code));
    std::memset(b + 2, 0, kIdField);
  }

  // Takes c out of its room (the last member fills its seat) and tells those who remain.
  void leave(Conn& c) {
    const size_t r = static_cast<size_t>(c.room);
    int* members = &rooms_[r * static_cast<size_t>(o_.maxRoomUsers)];
    uint32_t& count = roomCounts_[r];
    const uint32_t seat = c.roomSlot;
    members[seat] = members[--count];
    conns_[static_cast<size_t>(members[seat])].roomSlot = seat;
    members[count] = -1;
    c.room = -1;
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t* b = reply(conns_[static_cast<size_t>(members[i])], kRoomLeaveUserNotify, kIdField);
      if (b != nullptr) std::memcpy(b, c.id, kIdField);
    }
  }

  void chat(Conn& c, const uint8_t* body, size_t length) {
    if (c.room < 0) return result(c, kRoomChatResponse, kChatInvalidRoom);
    result(c, kRoomChatResponse, kOk);
    size_t n = 0;
    while (n < length && body[n] != 0) ++n;
    // The notify is built once, then copied into every member's buffer.
    uint8_t notify[kHeader + kIdField + kMsgField];
    writeU16(notify, sizeof notify);
    writeU16(notify + 2, kRoomChatNotify);
    notify[4] = 0;
    std::memcpy(notify + kHeader, c.id, kIdField);
    std::memcpy(notify + kHeader + kIdField, body, n);
    std::memset(notify + kHeader + kIdField + n, 0, kMsgField - n);
    const size_t r = static_cast<size_t>(c.room);
    const int* members = &rooms_[r * static_cast<size_t>(o_.maxRoomUsers)];
    // A receiver closed as a slow consumer leaves the room meanwhile: the count is read anew.
    const uint32_t& count = roomCounts_[r];
    for (uint32_t i = 0; i < count; ++i) {
      Conn& to = conns_[static_cast<size_t>(members[i])];
      if (to.fd < 0) continue;
      uint8_t* b = reserveOut(to, sizeof notify);
      if (b != nullptr) std::memcpy(b, notify, sizeof notify);
    }
  }

  void result(Conn& c, uint16_t id, int16_t code) {
    uint8_t* b = reply(c, id, 2);
    if (b != nullptr) writeU16(b, static_cast<uint16_t>(code));
  }

  // Room for a packet of body bytes at the end of c's outbound buffer, its header written; null if c was closed.
  uint8_t* reply(Conn& c, uint16_t id, size_t body) {
    uint8_t* p = reserveOut(c, kHeader + body);
    if (p == nullptr) return nullptr;
    writeU16(p, static_cast<uint16_t>(kHeader + body));
    writeU16(p + 2, id);
    p[4] = 0;
    return p + kHeader;
  }

  uint8_t* reserveOut(Conn& c, size_t n) {
    if (c.fd < 0) return nullptr;
    if (c.outLength + n > kOutCapacity) {
      if (c.outStart > 0) {
        std::memmove(c.out, c.out + c.outStart, c.outLength - c.outStart);
        c.outLength -= c.outStart;
        c.outStart = 0;
      }
      if (c.outLength + n > kOutCapacity) {
        closeConn(c);  // a slow consumer
        return nullptr;
      }
    }
    uint8_t* p = c.out + c.outLength;
    c.outLength += static_cast<uint32_t>(n);
    markDirty(c);
    return p;
  }

  void markDirty(Conn& c) {
    if (c.dirty) return;
    c.dirty = true;
    dirty_.push_back(c.fd);
  }

  // One send per connection that has something to write.
  void flushAll() {
    for (size_t i = 0; i < dirty_.size(); ++i) {
      Conn& c = conns_[static_cast<size_t>(dirty_[i])];
      if (c.fd < 0 || !c.dirty) continue;
      c.dirty = false;
      if (c.outLength == c.outStart) continue;
      ssize_t n = ::send(c.fd, c.out + c.outStart, c.outLength - c.outStart, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        closeConn(c);
        continue;
      }
      if (n > 0) c.outStart += static_cast<uint32_t>(n);
      const bool done = c.outStart == c.outLength;
      if (done) c.outStart = c.outLength = 0;
      if (done == c.waitingWritable) watchWritable(c, !done);
    }
    dirty_.clear();
  }

  void watchWritable(Conn& c, bool on) {
    c.waitingWritable = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = (static_cast<uint64_t>(c.generation) << 32) | static_cast<uint32_t>(c.fd);
    ::epoll_ctl(epollFd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void protocolError(Conn& c) {
    uint8_t* b = reply(c, kDisconnectNotify, 2);
    if (b == nullptr) return;
    writeU16(b, kReasonProtocol);
    ::send(c.fd, c.out + c.outStart, c.outLength - c.outStart, MSG_NOSIGNAL | MSG_DONTWAIT);
    closeConn(c);
  }

  void closeConn(Conn& c) {
    if (c.fd < 0) return;
    const int fd = c.fd;
    // Off the lists first, so that the notifies below never reach it.
    c.fd = -1;
    c.dirty = false;
    if (c.room >= 0) leave(c);
    if (c.loggedIn) {
      eraseId(findId(c.id, c.idLength));
      c.loggedIn = false;
      --users_;
    }
    ::close(fd);  // also takes it out of the epoll set
    --open_;
  }

  static uint32_t hashId(const char* s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(s[i])) * 16777619u;
    return h;
  }

  // The slot of id in the open-addressed table: where it is, or the empty slot where it would go.
  size_t findId(const char* s, size_t n) const {
    size_t i = hashId(s, n) & idMask_;
    while (ids_[i] >= 0) {
      const Conn& o = conns_[static_cast<size_t>(ids_[i])];
      if (o.idLength == n && std::memcmp(o.id, s, n) == 0) return i;
      i = (i + 1) & idMask_;
    }
    return i;
  }

  // Linear-probing deletion that shifts later entries back: no tombstones.
  void eraseId(size_t i) {
    ids_[i] = -1;
    for (size_t j = (i + 1) & idMask_; ids_[j] >= 0; j = (j + 1) & idMask_) {
      const Conn& o = conns_[static_cast<size_t>(ids_[j])];
      const size_t home = hashId(o.id, o.idLength) & idMask_;
      const bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (between) continue;
      ids_[i] = ids_[j];
      ids_[j] = -1;
      i = j;
    }
  }

  const Options o_;
  size_t slots_ = 0;
  int listenFd_ = -1;
  int epollFd_ = -1;
  int open_ = 0;
  int users_ = 0;
  std::vector<Conn> conns_;
  uint8_t* inMemory_ = nullptr;
  uint8_t* outMemory_ = nullptr;
  std::vector<int> dirty_;
  std::vector<int> rooms_;
  std::vector<uint32_t> roomCounts_;
  std::vector<int> ids_;
  size_t idMask_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Server server(o);
  server.listen();
  server.run();
  return 0;
}
