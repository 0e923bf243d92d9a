#include "iocp_engine.h"

#include <algorithm>
#include <cstring>

#include "../core/disconnect_notify.h"
#include "winsock_error.h"

namespace iocpnet {

namespace {

// recv() calls per readiness before the connection goes to the back of its
// thread's queue, so one fast sender cannot starve the others.
constexpr int kReadsPerWake = 16;
// AcceptEx requests kept posted: a burst of connects is absorbed without
// waiting for the acceptor thread between each.
constexpr size_t kAcceptsPosted = 16;
// Completions taken per GetQueuedCompletionStatusEx call.
constexpr ULONG kCompletionsPerWait = 128;

// Completion keys. Connection sockets carry kConnectionKey and an IoRequest;
// the listening socket kAcceptKey and an AcceptRequest; wake-ups kWakeKey and
// no OVERLAPPED.
constexpr ULONG_PTR kConnectionKey = 1;
constexpr ULONG_PTR kAcceptKey = 2;
constexpr ULONG_PTR kWakeKey = 3;

constexpr DWORD kAddressSize = sizeof(sockaddr_in6) + 16;

std::string addressText(const sockaddr* addr, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = {0};
  *port = 0;
  if (addr == nullptr) return std::string();
  if (addr->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    *port = ntohs(a->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    *port = ntohs(a->sin6_port);
  }
  return text;
}

// The NTSTATUS a completion left in its OVERLAPPED; 0 is success. Requests
// posted with PostQueuedCompletionStatus are zeroed before posting.
bool completedOk(const OVERLAPPED* ov) { return ov->Internal == 0; }

void initRequest(IoRequest& req, IocpConnection* c, IoKind kind) {
  std::memset(&req.ov, 0, sizeof req.ov);
  req.connection = c;
  req.kind = kind;
}

}  // namespace

std::unique_ptr<EngineCore> createEngine(const EngineOptions& options) { return std::make_unique<IocpEngine>(options); }

const char* engineName() noexcept { return "iocp"; }

IocpEngine::IocpEngine(const EngineOptions& options) : EngineBase(options) {
  WSADATA data;
  wsaStarted_ = WSAStartup(MAKEWORD(2, 2), &data) == 0;
}

IocpEngine::~IocpEngine() {
  stop();
  if (listen_ != INVALID_SOCKET) closesocket(listen_);
  if (reserve_ != INVALID_SOCKET) closesocket(reserve_);
  for (AcceptRequest& a : accepts_) {
    if (a.socket != INVALID_SOCKET) closesocket(a.socket);
  }
  for (auto& t : ioThreads_) {
    if (t->port != nullptr) CloseHandle(t->port);
  }
  if (wsaStarted_) WSACleanup();
}

EngineError IocpEngine::listen(const std::string& ip, uint16_t port, uint16_t* boundPort) {
  if (running()) return EngineError{"ERR_SERVER_STATE", "the engine is already listening"};
  if (!wsaStarted_) return winsockError(WSANOTINITIALISED, "WSAStartup");
  // Winsock has no SO_REUSEPORT: SO_REUSEADDR there lets a second socket take
  // the port over (not share its connections), which the exclusive bind below
  // prevents. docs/CLUSTER.md, "Worker processes", says what works on Windows.
  if (options().reusePort) return EngineError{"ENOTSUP", "reusePort: Windows has no SO_REUSEPORT"};
  sockaddr_storage addr{};
  int addrLen;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addrLen = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addrLen = sizeof(sockaddr_in6);
  } else {
    return EngineError{"EINVAL", "not a numeric IP address: " + ip};
  }
  family_ = addr.ss_family;

  SOCKET s =
      WSASocketW(family_, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return winsockError(WSAGetLastError(), "socket");
  auto fail = [&](const std::string& what) {
    int err = WSAGetLastError();
    closesocket(s);
    return winsockError(err, what);
  };
  // Windows lets a second SO_REUSEADDR socket take over a bound port; an
  // exclusive bind gives the EADDRINUSE that other platforms give.
  BOOL yes = TRUE;
  setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<const char*>(&yes), sizeof yes);
  if (family_ == AF_INET6) {
    // "::" takes IPv4 clients too, as Node and the libuv engine do.
    DWORD no = 0;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&no), sizeof no);
  }
  std::string where = ip + ":" + std::to_string(port);
  if (bind(s, reinterpret_cast<sockaddr*>(&addr), addrLen) != 0) return fail("listen " + where);
  if (::listen(s, SOMAXCONN) != 0) return fail("listen " + where);
  sockaddr_storage bound{};
  int boundLen = sizeof bound;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&bound), &boundLen) != 0) return fail("getsockname");
  addressText(reinterpret_cast<sockaddr*>(&bound), boundPort);

  GUID acceptExId = WSAID_ACCEPTEX;
  GUID sockaddrsId = WSAID_GETACCEPTEXSOCKADDRS;
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &acceptExId, sizeof acceptExId, &acceptEx_, sizeof acceptEx_,
               &bytes, nullptr, nullptr) != 0 ||
      WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &sockaddrsId, sizeof sockaddrsId, &getAcceptExSockaddrs_,
               sizeof getAcceptExSockaddrs_, &bytes, nullptr, nullptr) != 0) {
    return fail("AcceptEx lookup");
  }
  // Skipping the completion packet of an operation that succeeds at once is
  // safe only when the provider's sockets are real kernel handles: a layered
  // provider may still queue one, and the operation would complete twice.
  WSAPROTOCOL_INFOW info{};
  int infoLen = sizeof info;
  skipModes_ = getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &infoLen) == 0 &&
               (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;

  // Ports exist before any thread runs, so a wake-up always has a target.
  for (uint16_t i = 0; i < threadCount(); ++i) {
    auto t = std::make_unique<IocpIoThread>();
    t->index = i;
    t->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    if (t->port == nullptr) {
      int err = static_cast<int>(GetLastError());
      closesocket(s);
      for (auto& made : ioThreads_) CloseHandle(made->port);
      ioThreads_.clear();
      return winsockError(err, "CreateIoCompletionPort");
    }
    t->readBuffer = std::make_unique<uint8_t[]>(kReadBufferSize);
    t->sendBuffers = std::make_unique<WSABUF[]>(kMaxWriteBuffers);
    ioThreads_.push_back(std::move(t));
  }
  if (CreateIoCompletionPort(reinterpret_cast<HANDLE>(s), ioThreads_[0]->port, kAcceptKey, 0) == nullptr) {
    int err = static_cast<int>(GetLastError());
    closesocket(s);
    for (auto& made : ioThreads_) CloseHandle(made->port);
    ioThreads_.clear();
    return winsockError(err, "CreateIoCompletionPort");
  }
  listen_ = s;
  reserve_ = newAcceptSocket();

  tickMs_ = tickMs();
  accepting_ = true;
  // Posted before thread 0 runs; their completions wait in its port. A slot
  // that cannot be posted now is retried on thread 0's timer.
  accepts_ = std::vector<AcceptRequest>(kAcceptsPosted);
  for (AcceptRequest& a : accepts_) {
    if (!postAccept(a)) acceptBackoff_ = true;
  }
  startThreads();
  return EngineError{};
}

void IocpEngine::run(IocpIoThread& t) {
  IoThreadCore& core = threadCore(t.index);
  OVERLAPPED_ENTRY entries[kCompletionsPerWait];
  t.now = GetTickCount64();
  t.nextTick = t.now + tickMs_;
  // Thread 0 also waits for its cancelled AcceptEx requests: their
  // OVERLAPPEDs must not be in use when the engine is destroyed.
  while (!(t.finishing && (t.index != 0 || acceptsPending_ == 0))) {
    // Writes queued by this step's commands must not wait for the next completion.
    DWORD timeout = !core.dirty.empty() ? 0 : static_cast<DWORD>(t.nextTick > t.now ? t.nextTick - t.now : 0);
    ULONG n = 0;
    BOOL got = GetQueuedCompletionStatusEx(t.port, entries, kCompletionsPerWait, &n, timeout, FALSE);
    t.now = GetTickCount64();
    if (got) {
      for (ULONG i = 0; i < n; ++i) dispatch(t, entries[i]);
    }
    if (t.now >= t.nextTick) {
      t.nextTick = t.now + tickMs_;
      if (t.index == 0 && acceptBackoff_) retryAccepts();
      onTimer(core);
    }
    endStep(core);
  }
  threadExited(core);
}

void IocpEngine::dispatch(IocpIoThread& t, const OVERLAPPED_ENTRY& entry) {
  switch (entry.lpCompletionKey) {
    case kWakeKey:
      runCommands(threadCore(t.index));
      break;
    case kAcceptKey:
      onAcceptDone(t, *reinterpret_cast<AcceptRequest*>(entry.lpOverlapped), completedOk(entry.lpOverlapped));
      break;
    case kConnectionKey: {
      IoRequest& req = *reinterpret_cast<IoRequest*>(entry.lpOverlapped);
      onConnectionCompletion(*req.connection, req.kind, completedOk(entry.lpOverlapped),
                             entry.dwNumberOfBytesTransferred);
      break;
    }
    default:
      break;
  }
}

void IocpEngine::onConnectionCompletion(IocpConnection& c, IoKind kind, bool ok, DWORD bytes) {
  switch (kind) {
    case IoKind::Readable:
      c.recvArmed = false;
      if (!c.socketClosed) {
        // An aborted receive on an open socket means the connection broke.
        if (ok) readAvailable(ioThreadOf(c), c);
        else onReadError(c);
      }
      break;
    case IoKind::Write:
      onWriteDone(c, ok && bytes == c.sendBytes);
      break;
    case IoKind::Shutdown:
      if (!c.socketClosed) {
        if (c.shutdownFailed) onReadError(c);
        else onShutdownDone(c);
      }
      break;
    case IoKind::Closed:
      break;
  }
  release(c);
}

void IocpEngine::release(IocpConnection& c) {
  if (--c.pendingIo == 0 && c.socketClosed) {
    c.socketClosed = false;
    onSocketClosed(c);
  }
}

bool IocpEngine::postToOwner(IocpConnection& c, IoRequest& req) {
  std::memset(&req.ov, 0, sizeof req.ov);
  ++c.pendingIo;
  if (PostQueuedCompletionStatus(ioThreadOf(c).port, 0, kConnectionKey, &req.ov)) return true;
  --c.pendingIo;
  return false;
}

// ---- reading ----

void IocpEngine::readAvailable(IocpIoThread& t, IocpConnection& c) {
  int reads = 0;
  for (;;) {
    // Until the socket would block; then a zero-byte receive waits for more.
    for (;;) {
      if (c.socketClosed) return;
      // Flow control stopped reading: resumeReading arms it again.
      if (c.flowPaused) return;
      if (reads++ == kReadsPerWake) {
        // Fair share used: continue after the completions already queued.
        c.recvArmed = true;
        if (!postToOwner(c, c.recvReq)) {
          c.recvArmed = false;
          onReadError(c);
        }
        return;
      }
      size_t size = readLimit(c, kReadBufferSize);
      int n = recv(c.socket, reinterpret_cast<char*>(t.readBuffer.get()), static_cast<int>(size), 0);
      if (n > 0) {
        onData(c, t.readBuffer.get(), static_cast<size_t>(n));
        // Paused (JS is behind): nothing is armed until it resumes.
        if (c.readPaused) return;
        // A short read usually means the socket is drained.
        if (static_cast<size_t>(n) < size) break;
        continue;
      }
      if (n == 0) {
        onPeerEnded(c);
        return;
      }
      int err = WSAGetLastError();
      if (err == WSAEWOULDBLOCK) break;
      if (err == WSAEINTR) continue;
      onReadError(c);
      return;
    }
    if (c.socketClosed || c.peerEnded || c.flowPaused) return;
    if (!armRead(c)) return;
  }
}

// Posts the zero-byte receive. Returns true when it completed at once and no
// completion packet follows (data is waiting: read it now).
bool IocpEngine::armRead(IocpConnection& c) {
  WSABUF none{0, nullptr};
  DWORD bytes = 0;
  DWORD flags = 0;
  initRequest(c.recvReq, &c, IoKind::Readable);
  ++c.pendingIo;
  c.recvArmed = true;
  int r = WSARecv(c.socket, &none, 1, &bytes, &flags, &c.recvReq.ov, nullptr);
  if (r == 0) {
    if (!c.skipOnSuccess) return false;  // its completion is queued
    --c.pendingIo;
    c.recvArmed = false;
    return true;
  }
  if (WSAGetLastError() == WSA_IO_PENDING) return false;
  --c.pendingIo;
  c.recvArmed = false;
  onReadError(c);
  return false;
}

void IocpEngine::pauseReading(ConnectionCore&) {
  // Nothing is posted while paused: readAvailable returns without reading or arming.
}

void IocpEngine::resumeReading(ConnectionCore& core) {
  IocpConnection& c = static_cast<IocpConnection&>(core);
  if (c.socketClosed || c.recvArmed || c.peerEnded) return;
  // Read on the next turn: the caller is in the middle of the core's work.
  c.recvArmed = true;
  if (!postToOwner(c, c.recvReq)) {
    c.recvArmed = false;
    onReadError(c);
  }
}

// ---- writing and closing ----

void IocpEngine::startWrite(ConnectionCore& core) {
  IocpConnection& c = static_cast<IocpConnection&>(core);
  if (c.sendingInline) {
    // onWriteDone of an inline completion wants more: the loop below sends it.
    c.sendAgain = true;
    return;
  }
  IocpIoThread& t = ioThreadOf(c);
  for (;;) {
    if (c.socketClosed) return;
    uint64_t total = 0;
    WSABUF* bufs = t.sendBuffers.get();
    size_t n = c.sendq.takeForWrite(kMaxWriteBuffers, [&, i = size_t{0}](const uint8_t* data, size_t len) mutable {
      bufs[i].buf = reinterpret_cast<char*>(const_cast<uint8_t*>(data));
      bufs[i].len = static_cast<ULONG>(len);
      total += len;
      ++i;
    });
    if (n == 0) return;
    c.writeInFlight = true;
    // A non-blocking send first: while the socket buffer has room (nearly
    // always) the bytes are taken at once and no request is posted at all.
    DWORD sent = 0;
    int r = WSASend(c.socket, bufs, static_cast<DWORD>(n), &sent, 0, nullptr, nullptr);
    if (r != 0) {
      int err = WSAGetLastError();
      if (err != WSAEWOULDBLOCK) {
        onWriteDone(c, false);
        return;
      }
      sent = 0;
    }
    if (sent == total) {
      c.sendingInline = true;
      c.sendAgain = false;
      onWriteDone(c, true);
      c.sendingInline = false;
      // What onWriteDone asked for goes out in this loop rather than by recursion.
      if (c.sendAgain) continue;
      return;
    }
    // The rest waits in one overlapped WSASend; the slices stay in flight until it completes.
    size_t first = 0;
    for (DWORD skip = sent; skip > 0;) {
      if (skip >= bufs[first].len) {
        skip -= bufs[first].len;
        ++first;
      } else {
        bufs[first].buf += skip;
        bufs[first].len -= skip;
        skip = 0;
      }
    }
    // A connection's queue is bounded by maxSendQueueBytes (at most 2 GiB).
    c.sendBytes = static_cast<uint32_t>(total - sent);
    initRequest(c.sendReq, &c, IoKind::Write);
    ++c.pendingIo;
    DWORD more = 0;
    r = WSASend(c.socket, bufs + first, static_cast<DWORD>(n - first), &more, 0, &c.sendReq.ov, nullptr);
    if (r == 0 && c.skipOnSuccess) {
      // Done already and no packet will be queued: finish it here.
      --c.pendingIo;
      c.sendingInline = true;
      c.sendAgain = false;
      onWriteDone(c, more == c.sendBytes);
      c.sendingInline = false;
      if (c.sendAgain) continue;
      return;
    }
    if (r != 0 && WSAGetLastError() != WSA_IO_PENDING) {
      --c.pendingIo;
      onWriteDone(c, false);
    }
    return;
  }
}

void IocpEngine::shutdownSend(ConnectionCore& core) {
  IocpConnection& c = static_cast<IocpConnection&>(core);
  // No send is in flight (the core waits for it), so the FIN follows the
  // last byte; the core hears of it on the next turn, as from libuv.
  c.shutdownFailed = ::shutdown(c.socket, SD_SEND) != 0;
  initRequest(c.shutdownReq, &c, IoKind::Shutdown);
  if (!postToOwner(c, c.shutdownReq)) onReadError(c);
}

void IocpEngine::closeSocket(ConnectionCore& core) {
  IocpConnection& c = static_cast<IocpConnection&>(core);
  if (c.socketClosed) return;
  if (c.socket != INVALID_SOCKET) {
    // Pending requests complete with ERROR_OPERATION_ABORTED through the port.
    CancelIoEx(reinterpret_cast<HANDLE>(c.socket), nullptr);
    closesocket(c.socket);
    c.socket = INVALID_SOCKET;
  }
  c.socketClosed = true;
  initRequest(c.closedReq, &c, IoKind::Closed);
  if (!postToOwner(c, c.closedReq)) {
    // The port refused the marker (out of memory): account for it as if
    // dequeued, from the next completion or right now if none is pending.
    ++c.pendingIo;
    release(c);
  }
}

// ---- accepting ----

SOCKET IocpEngine::newAcceptSocket() const {
  return WSASocketW(family_, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

bool IocpEngine::postAccept(AcceptRequest& a) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    SOCKET s = newAcceptSocket();
    a.overReserve = s == INVALID_SOCKET;
    if (a.overReserve) {
      // One slot takes the reserve; the others wait for the timer.
      if (reserve_ == INVALID_SOCKET) return false;
      s = reserve_;
      reserve_ = INVALID_SOCKET;
    }
    std::memset(&a.ov, 0, sizeof a.ov);
    a.socket = s;
    DWORD bytes = 0;
    // Even an immediate success queues its completion: the listening socket
    // does not skip them, so every accept is handled in one place.
    if (acceptEx_(listen_, s, a.addresses, 0, kAddressSize, kAddressSize, &bytes, &a.ov) ||
        WSAGetLastError() == ERROR_IO_PENDING) {
      a.pending = true;
      ++acceptsPending_;
      return true;
    }
    int err = WSAGetLastError();
    closesocket(s);
    a.socket = INVALID_SOCKET;
    if (a.overReserve) reserve_ = newAcceptSocket();
    // A client that gave up while queued: take the next one.
    if (err != WSAECONNRESET) return false;
  }
  return false;
}

void IocpEngine::retryAccepts() {
  acceptBackoff_ = false;
  for (AcceptRequest& a : accepts_) {
    if (!a.pending && accepting_ && !postAccept(a)) acceptBackoff_ = true;
  }
}

void IocpEngine::onAcceptDone(IocpIoThread& t, AcceptRequest& a, bool ok) {
  a.pending = false;
  --acceptsPending_;
  SOCKET s = a.socket;
  a.socket = INVALID_SOCKET;
  bool overReserve = a.overReserve;
  a.overReserve = false;
  // A new reserve first: if one can be made, this connection can be served after all.
  if (overReserve && accepting_) reserve_ = newAcceptSocket();
  if (ok && listen_ != INVALID_SOCKET &&
      setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&listen_), sizeof listen_) ==
          0) {
    if (overReserve && reserve_ == INVALID_SOCKET) {
      // Still out of sockets: refused, and its handle makes the reserve again.
      Stats::add(stats().descriptorRefused);
      rejectSocket(static_cast<intptr_t>(s), NotifyCode::ServerFull);
      reserve_ = newAcceptSocket();
    } else {
      sockaddr* local = nullptr;
      sockaddr* remote = nullptr;
      int localLen = 0;
      int remoteLen = 0;
      getAcceptExSockaddrs_(a.addresses, 0, kAddressSize, kAddressSize, &local, &localLen, &remote, &remoteLen);
      uint16_t port = 0;
      std::string text = addressText(remoteLen > 0 ? remote : nullptr, &port);
      onAccepted(static_cast<intptr_t>(s), text, port, threadCore(t.index));
    }
  } else if (s != INVALID_SOCKET) {
    // Aborted (the listener closed) or the client reset before we saw it.
    closesocket(s);
    if (overReserve && accepting_ && reserve_ == INVALID_SOCKET) reserve_ = newAcceptSocket();
  }
  if (accepting_ && !postAccept(a)) acceptBackoff_ = true;
}

void IocpEngine::stopAccepting(IoThreadCore&) {
  if (!accepting_) return;
  accepting_ = false;
  // Posted AcceptEx requests complete as aborted; run() waits for them.
  CancelIoEx(reinterpret_cast<HANDLE>(listen_), nullptr);
  closesocket(listen_);
  listen_ = INVALID_SOCKET;
  if (reserve_ != INVALID_SOCKET) closesocket(reserve_);
  reserve_ = INVALID_SOCKET;
}

void IocpEngine::rejectSocket(intptr_t socket, NotifyCode code) {
  SOCKET s = static_cast<SOCKET>(socket);
  DisconnectNotifyPacket packet = disconnectNotifyPacket(code);
  // A fresh socket takes 7 bytes at once; if it does not, the peer is gone anyway.
  send(s, reinterpret_cast<const char*>(packet.data()), static_cast<int>(packet.size()), 0);
  ::shutdown(s, SD_SEND);
  closesocket(s);
}

// ---- per connection and per thread ----

ConnectionCore* IocpEngine::adoptSocket(IoThreadCore& core, uint32_t slot, intptr_t socket, bool* ok) {
  IocpConnection& c = connectionIn(slot);
  IocpIoThread& t = ioThread(core);
  // The core sets c.thread after this returns; requests posted below need it now.
  c.thread = core.index;
  c.socket = static_cast<SOCKET>(socket);
  c.pendingIo = 0;
  c.recvArmed = c.socketClosed = c.sendingInline = c.sendAgain = c.shutdownFailed = false;
  c.skipOnSuccess = false;
  c.sendBytes = 0;
  *ok = false;
  // Non-blocking for the recv() calls after a readiness; the overlapped
  // requests are not affected by it.
  u_long nonBlocking = 1;
  BOOL noDelay = TRUE;
  if (ioctlsocket(c.socket, FIONBIO, &nonBlocking) != 0 ||
      setsockopt(c.socket, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&noDelay), sizeof noDelay) != 0 ||
      CreateIoCompletionPort(reinterpret_cast<HANDLE>(c.socket), t.port, kConnectionKey, 0) == nullptr) {
    return &c;
  }
  c.skipOnSuccess = skipModes_ && SetFileCompletionNotificationModes(
                                      reinterpret_cast<HANDLE>(c.socket),
                                      FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE);
  // The first read runs on the next turn, once the core has set the
  // connection up (it does so after this returns).
  initRequest(c.recvReq, &c, IoKind::Readable);
  c.recvArmed = true;
  *ok = postToOwner(c, c.recvReq);
  if (!*ok) c.recvArmed = false;
  return &c;
}

void IocpEngine::wakeThread(uint16_t i) { PostQueuedCompletionStatus(ioThread(i).port, 0, kWakeKey, nullptr); }

void IocpEngine::finishThread(IoThreadCore& core) {
  // Thread 0 has stopped accepting before it gets here (StopAccepting comes
  // first in its inbox); stopping again is a no-op that keeps run() from
  // waiting for accepts that nothing would cancel.
  if (core.index == 0) stopAccepting(core);
  // run() leaves its loop after this step (thread 0 once its accepts are back).
  ioThread(core).finishing = true;
}

uint64_t IocpEngine::nowMs(IoThreadCore& core) { return ioThread(core).now; }

void IocpEngine::stepPending(IoThreadCore&) {
  // run() calls endStep after every wait and does not block while the
  // thread's dirty list is not empty.
}

}  // namespace iocpnet
