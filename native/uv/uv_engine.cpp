#include "uv_engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "../core/disconnect_notify.h"

namespace iocpnet {

namespace {

// Sockets taken per accept wake-up, so that one busy listener cannot starve
// the connections of IO thread 0.
constexpr int kAcceptsPerWake = 128;
// How long the listener rests when a connection can neither be accepted nor
// refused (no descriptor and no reserve, or no memory).
constexpr uint64_t kAcceptBackoffMs = 100;
// The most a write gathers into one run (UvIoThread::writeBuffer); a larger
// write goes out from its slices.
constexpr size_t kWriteGatherBytes = 64 * 1024;

EngineError systemError(int err, const std::string& what) {
  int uvErr = uv_translate_sys_error(err);
  return EngineError{uv_err_name(uvErr), what + ": " + uv_strerror(uvErr)};
}

bool setNonBlockingCloexec(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return false;
  int fdFlags = fcntl(fd, F_GETFD, 0);
  return fdFlags >= 0 && fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC) >= 0;
}

// The descriptor kept in reserve for refusing connections: any will do.
int openReserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

// Accepts one connection, non-blocking and close-on-exec; -1 with errno set if none.
int acceptSocket(int listenFd, sockaddr_storage* addr) {
  socklen_t len = sizeof *addr;
#ifdef __linux__
  return ::accept4(listenFd, reinterpret_cast<sockaddr*>(addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int fd = ::accept(listenFd, reinterpret_cast<sockaddr*>(addr), &len);
  if (fd >= 0 && !setNonBlockingCloexec(fd)) {
    ::close(fd);
    errno = ECONNABORTED;
    return -1;
  }
  return fd;
#endif
}

std::string addressText(const sockaddr_storage& addr, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(a, text, sizeof text);
    *port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a, text, sizeof text);
    *port = ntohs(a->sin6_port);
  } else {
    *port = 0;
  }
  return text;
}

}  // namespace

std::unique_ptr<EngineCore> createEngine(const EngineOptions& options) { return std::make_unique<UvEngine>(options); }

const char* engineName() noexcept { return "libuv"; }

UvEngine::UvEngine(const EngineOptions& options) : EngineBase(options) {}

UvEngine::~UvEngine() {
  stop();
  if (listenFd_ >= 0) ::close(listenFd_);
  if (reserveFd_ >= 0) ::close(reserveFd_);
}

EngineError UvEngine::listen(const std::string& ip, uint16_t port, uint16_t* boundPort) {
  if (running()) return EngineError{"ERR_SERVER_STATE", "the engine is already listening"};
  sockaddr_storage addr{};
  socklen_t addrLen;
  if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) {
    addrLen = sizeof(sockaddr_in);
  } else if (uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    addrLen = sizeof(sockaddr_in6);
  } else {
    return EngineError{"EINVAL", "not a numeric IP address: " + ip};
  }
#ifndef SO_REUSEPORT
  if (options().reusePort) return EngineError{"ENOTSUP", "reusePort: this system has no SO_REUSEPORT"};
#endif
  int fd = ::socket(addr.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return systemError(errno, "socket");
  int one = 1;
  // libuv (1.44) has no flag for SO_REUSEPORT, so the socket is made here and set before bind.
  bool reuseOk = true;
#ifdef SO_REUSEPORT
  if (options().reusePort) reuseOk = ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0;
#endif
  if (!setNonBlockingCloexec(fd) || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 || !reuseOk ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), addrLen) != 0 || ::listen(fd, 511) != 0) {
    int err = errno;
    ::close(fd);
    return systemError(err, "listen " + ip + ":" + std::to_string(port));
  }
  sockaddr_storage bound{};
  socklen_t boundLen = sizeof bound;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLen) != 0) {
    int err = errno;
    ::close(fd);
    return systemError(err, "getsockname");
  }
  addressText(bound, boundPort);
  listenFd_ = fd;
  reserveFd_ = openReserve();

  // Loops and handles are set up here, before any thread runs, so that a
  // wake-up can never reach a handle that is not initialised yet.
  uint64_t tick = tickMs();
  for (uint16_t i = 0; i < threadCount(); ++i) {
    auto t = std::make_unique<UvIoThread>();
    t->engine = this;
    t->index = i;
    t->readBuffer = std::make_unique<uint8_t[]>(kReadBufferSize);
    t->writeBuffer = std::make_unique<uint8_t[]>(kWriteGatherBytes);
    uv_loop_init(&t->loop);
    t->async.data = t->timer.data = t->check.data = t->idle.data = t->acceptPoll.data = t.get();
    uv_async_init(&t->loop, &t->async, onAsync);
    uv_timer_init(&t->loop, &t->timer);
    uv_timer_start(&t->timer, onTimer, tick, tick);
    uv_check_init(&t->loop, &t->check);
    uv_check_start(&t->check, onCheck);
    uv_idle_init(&t->loop, &t->idle);
    if (i == 0) {
      t->acceptRetry.data = t.get();
      uv_timer_init(&t->loop, &t->acceptRetry);
      uv_poll_init(&t->loop, &t->acceptPoll, listenFd_);
      uv_poll_start(&t->acceptPoll, UV_READABLE, onAcceptReady);
      t->accepting = true;
    }
    ioThreads_.push_back(std::move(t));
  }
  startThreads();
  return EngineError{};
}

void UvEngine::run(UvIoThread& t) {
  uv_run(&t.loop, UV_RUN_DEFAULT);
  uv_loop_close(&t.loop);
  threadExited(threadCore(t.index));
}

ConnectionCore* UvEngine::adoptSocket(IoThreadCore& core, uint32_t slot, intptr_t socket, bool* ok) {
  UvConnection& c = connectionIn(slot);
  UvIoThread& t = ioThread(core);
  c.engine = this;
  uv_tcp_init(&t.loop, &c.tcp);
  c.tcp.data = &c;
  int fd = static_cast<int>(socket);
  *ok = uv_tcp_open(&c.tcp, fd) == 0;
  if (!*ok) {
    ::close(fd);
    return &c;
  }
  uv_tcp_nodelay(&c.tcp, 1);
  *ok = uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), onAlloc, onRead) == 0;
  return &c;
}

void UvEngine::startWrite(ConnectionCore& core) {
  UvConnection& c = static_cast<UvConnection&>(core);
  uv_buf_t bufs[kMaxWriteBuffers];
  size_t total = 0;
  size_t n = c.sendq.takeForWrite(kMaxWriteBuffers, [&, i = size_t{0}](const uint8_t* data, size_t len) mutable {
    bufs[i++] = uv_buf_init(reinterpret_cast<char*>(const_cast<uint8_t*>(data)), static_cast<unsigned>(len));
    total += len;
  });
  if (n == 0) return;
  c.writeInFlight = true;
  uv_stream_t* stream = reinterpret_cast<uv_stream_t*>(&c.tcp);
  // Try a plain write first, as Node does: a write that completes here needs
  // no write request, and libuv then has no watcher to re-arm (one
  // epoll_ctl saved per write). Many short slices (a member of a busy room)
  // are copied into the thread's gather buffer first and tried as one run:
  // the kernel's send then walks one buffer instead of an iovec per packet.
  int written;
  if (n > 1 && total <= kWriteGatherBytes) {
    uint8_t* gather = ioThread(c.thread).writeBuffer.get();
    size_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(gather + at, bufs[i].base, bufs[i].len);
      at += bufs[i].len;
    }
    uv_buf_t one = uv_buf_init(reinterpret_cast<char*>(gather), static_cast<unsigned>(total));
    written = uv_try_write(stream, &one, 1);
  } else {
    written = uv_try_write(stream, bufs, static_cast<unsigned>(n));
  }
  if (written == static_cast<int>(total)) {
    onWriteDone(c, true);
    return;
  }
  if (written < 0 && written != UV_EAGAIN) {
    onWriteDone(c, false);
    return;
  }
  // What the socket did not take goes out as one queued write.
  size_t first = 0;
  size_t skip = written > 0 ? static_cast<size_t>(written) : 0;
  while (skip >= bufs[first].len) skip -= bufs[first++].len;
  bufs[first].base += skip;
  bufs[first].len -= static_cast<unsigned>(skip);
  c.writeReq.data = &c;
  int r = uv_write(&c.writeReq, stream, bufs + first, static_cast<unsigned>(n - first), onWrite);
  if (r != 0) onWriteDone(c, false);
}

void UvEngine::shutdownSend(ConnectionCore& core) {
  UvConnection& c = static_cast<UvConnection&>(core);
  c.shutdownReq.data = &c;
  if (uv_shutdown(&c.shutdownReq, reinterpret_cast<uv_stream_t*>(&c.tcp), onShutdown) != 0) onReadError(c);
}

void UvEngine::closeSocket(ConnectionCore& core) {
  UvConnection& c = static_cast<UvConnection&>(core);
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(&c.tcp);
  if (!uv_is_closing(h)) uv_close(h, onClose);
}

void UvEngine::pauseReading(ConnectionCore& core) {
  UvConnection& c = static_cast<UvConnection&>(core);
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c.tcp));
}

void UvEngine::resumeReading(ConnectionCore& core) {
  UvConnection& c = static_cast<UvConnection&>(core);
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c.tcp)) || c.peerEnded) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), onAlloc, onRead) != 0) onReadError(c);
}

void UvEngine::wakeThread(uint16_t i) { uv_async_send(&ioThread(i).async); }

void UvEngine::stopAccepting(IoThreadCore& core) {
  UvIoThread& t = ioThread(core);
  if (!t.accepting) return;
  t.accepting = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&t.acceptRetry), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.acceptPoll), [](uv_handle_t* h) {
    UvIoThread& self = ioThreadOf(h);
    // The descriptor is closed only after libuv let go of it.
    if (self.engine->listenFd_ >= 0) {
      ::close(self.engine->listenFd_);
      self.engine->listenFd_ = -1;
    }
    if (self.engine->reserveFd_ >= 0) {
      ::close(self.engine->reserveFd_);
      self.engine->reserveFd_ = -1;
    }
  });
}

void UvEngine::finishThread(IoThreadCore& core) {
  UvIoThread& t = ioThread(core);
  // Handing the last events over before the loop ends.
  endStep(core);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.check), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.idle), nullptr);
}

uint64_t UvEngine::nowMs(IoThreadCore& core) { return uv_now(&ioThread(core).loop); }

void UvEngine::stepPending(IoThreadCore& core) {
  UvIoThread& t = ioThread(core);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&t.idle))) uv_idle_start(&t.idle, [](uv_idle_t*) {});
}

void UvEngine::rejectSocket(intptr_t socket, NotifyCode code) {
  int fd = static_cast<int>(socket);
  DisconnectNotifyPacket packet = disconnectNotifyPacket(code);
#ifdef MSG_NOSIGNAL
  ssize_t sent = ::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL);
#else
  ssize_t sent = ::send(fd, packet.data(), packet.size(), 0);
#endif
  (void)sent;  // a fresh socket takes 7 bytes; if it does not, the peer is gone anyway
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

void UvEngine::acceptAll(UvIoThread& t) {
  for (int i = 0; i < kAcceptsPerWake && t.accepting; ++i) {
    sockaddr_storage addr{};
    int fd = acceptSocket(listenFd_, &addr);
    if (fd >= 0) {
      handOver(fd, addr, t);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EMFILE || err == ENFILE) {
      // Linux says EMFILE before it looks for a connection: only the reserve tells whether one waits.
      OverReserve r = acceptOverReserve(t);
      if (r == OverReserve::Taken) continue;
      if (r == OverReserve::NoneWaiting) return;
    }
    backOff(t);
    return;
  }
}

UvEngine::OverReserve UvEngine::acceptOverReserve(UvIoThread& t) {
  // As libuv's own accept does: the reserve descriptor is given up for the
  // moment it takes to accept the waiting connection, so that the client is
  // told at once instead of waiting in the backlog for a descriptor.
  if (reserveFd_ < 0) reserveFd_ = openReserve();
  if (reserveFd_ < 0) return OverReserve::NoReserve;
  ::close(reserveFd_);
  sockaddr_storage addr{};
  int fd = acceptSocket(listenFd_, &addr);
  int err = errno;
  reserveFd_ = openReserve();
  if (fd < 0) {
    // Another thread took the descriptor given up (EMFILE again), or there is no reserve now: back off.
    if (reserveFd_ < 0 || err == EMFILE || err == ENFILE) return OverReserve::NoReserve;
    if (err == EAGAIN || err == EWOULDBLOCK) return OverReserve::NoneWaiting;
    return OverReserve::Taken;  // the client gave up meanwhile (ECONNABORTED): try the next
  }
  if (reserveFd_ >= 0) {
    // A descriptor came free meanwhile: the connection is served after all.
    handOver(fd, addr, t);
    return OverReserve::Taken;
  }
  // The connection holds the last descriptor: it is refused, and its
  // descriptor becomes the reserve again.
  Stats::add(stats().descriptorRefused);
  rejectSocket(fd, NotifyCode::ServerFull);
  reserveFd_ = openReserve();
  return reserveFd_ >= 0 ? OverReserve::Taken : OverReserve::NoReserve;
}

void UvEngine::handOver(int fd, const sockaddr_storage& addr, UvIoThread& t) {
  uint16_t port = 0;
  std::string text = addressText(addr, &port);
  onAccepted(fd, text, port, threadCore(t.index));
}

void UvEngine::backOff(UvIoThread& t) {
  if (!t.accepting) return;
  uv_poll_stop(&t.acceptPoll);
  uv_timer_start(&t.acceptRetry, onAcceptRetry, kAcceptBackoffMs, 0);
}

void UvEngine::onAsync(uv_async_t* h) {
  UvIoThread& t = ioThreadOf(reinterpret_cast<uv_handle_t*>(h));
  t.engine->runCommands(t.engine->threadCore(t.index));
}

void UvEngine::onTimer(uv_timer_t* h) {
  UvIoThread& t = ioThreadOf(reinterpret_cast<uv_handle_t*>(h));
  t.engine->EngineCore::onTimer(t.engine->threadCore(t.index));
}

void UvEngine::onCheck(uv_check_t* h) {
  UvIoThread& t = ioThreadOf(reinterpret_cast<uv_handle_t*>(h));
  t.engine->endStep(t.engine->threadCore(t.index));
  if (t.engine->threadCore(t.index).dirty.empty()) uv_idle_stop(&t.idle);
}

void UvEngine::onAcceptReady(uv_poll_t* h, int status, int /*events*/) {
  UvIoThread& t = ioThreadOf(reinterpret_cast<uv_handle_t*>(h));
  if (status < 0) return;
  t.engine->acceptAll(t);
}

void UvEngine::onAcceptRetry(uv_timer_t* h) {
  UvIoThread& t = ioThreadOf(reinterpret_cast<uv_handle_t*>(h));
  if (t.accepting) uv_poll_start(&t.acceptPoll, UV_READABLE, onAcceptReady);
}

void UvEngine::onAlloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  UvConnection& c = connectionOf(h);
  UvIoThread& t = c.engine->ioThread(c.thread);
  size_t size = c.engine->readLimit(c, kReadBufferSize);
  *buf = uv_buf_init(reinterpret_cast<char*>(t.readBuffer.get()), static_cast<unsigned>(size));
}

void UvEngine::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  UvConnection& c = connectionOf(reinterpret_cast<uv_handle_t*>(s));
  UvEngine* e = c.engine;
  if (nread > 0) {
    e->onData(c, reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    e->onPeerEnded(c);
  } else if (nread < 0) {
    e->onReadError(c);
  }
}

void UvEngine::onWrite(uv_write_t* req, int status) {
  UvConnection& c = *static_cast<UvConnection*>(req->data);
  c.engine->onWriteDone(c, status == 0);
}

void UvEngine::onShutdown(uv_shutdown_t* req, int status) {
  UvConnection& c = *static_cast<UvConnection*>(req->data);
  if (status == UV_ECANCELED) return;  // the socket is being closed
  if (status < 0) {
    c.engine->onReadError(c);
    return;
  }
  c.engine->onShutdownDone(c);
}

void UvEngine::onClose(uv_handle_t* h) {
  UvConnection& c = connectionOf(h);
  c.engine->onSocketClosed(c);
}

}  // namespace iocpnet
