// The Windows engine: I/O completion ports, AcceptEx, WSARecv / WSASend.
//
// One completion port per IO thread. The core gives every connection an
// owner thread, and every core call for that connection must run there; a
// single shared port would let any worker dequeue any completion and force
// either locks or a second hop to the owner. With one port per thread, a
// socket is associated with its owner's port when that thread adopts it, so
// each completion is dequeued by the only thread allowed to act on it. The
// listening socket belongs to IO thread 0's port, which keeps several AcceptEx
// posted and hands accepted sockets to the core (which spreads them over the
// threads round-robin, like the libuv engine's acceptor).
//
// Receive: a zero-byte overlapped WSARecv waits for readability, then
// non-blocking recv() calls read into the IO thread's shared buffer until the
// socket would block. A posted WSARecv with a real buffer would pin that
// buffer for as long as the connection is idle, i.e. one buffer per
// connection; the zero-byte receive keeps idle connections at no buffer at
// all, which is what the core's memory budget assumes.
//
// Send: one write in flight per connection, made of every slice queued (a
// WSABUF array). It is first offered to the socket without an OVERLAPPED
// (non-blocking, as libuv's uv_try_write): while the socket buffer has room
// it is taken at once and nothing is posted. What the socket does not take
// goes out as one overlapped WSASend; the slices stay in flight until it
// completes. FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set on connection
// sockets when the provider hands out real handles (no layered provider), so
// an overlapped request that succeeds at once is finished inline and never
// reaches the port.
//
// Close: CancelIoEx + closesocket, then the connection waits for every
// operation it still has posted (its I/O reference count) before the core
// may reuse the slot. A posted "closed" marker makes the last step
// asynchronous even when nothing was pending, because the core must never
// see onSocketClosed from inside one of its own calls.
#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>
#include <ws2tcpip.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "../core/engine_base.h"

namespace iocpnet {

class IocpEngine;
struct IocpConnection;

// What a completion on a connection means. Readable, Write and Shutdown are
// per-connection requests; Closed is the marker posted after closesocket.
enum class IoKind : uint8_t { Readable, Write, Shutdown, Closed };

// One overlapped request of a connection. The OVERLAPPED comes first so that
// a dequeued LPOVERLAPPED converts back to its request.
struct IoRequest {
  OVERLAPPED ov;
  IocpConnection* connection = nullptr;
  IoKind kind = IoKind::Readable;
};

// A connection of the IOCP engine. Owned by IocpEngine (one per slot,
// reused); touched only by the IO thread whose port the socket belongs to.
struct IocpConnection : ConnectionCore {
  SOCKET socket = INVALID_SOCKET;
  IoRequest recvReq;       // the zero-byte WSARecv, or a posted "read now"
  IoRequest sendReq;       // the overlapped WSASend in flight, if the socket did not take everything at once
  IoRequest shutdownReq;   // reports the FIN to the core one turn later
  IoRequest closedReq;     // the marker posted by closeSocket
  uint32_t pendingIo = 0;  // requests posted and not yet dequeued
  uint32_t sendBytes = 0;  // bytes of the overlapped WSASend in flight
  bool recvArmed = false;
  bool socketClosed = false;
  bool skipOnSuccess = false;  // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set
  bool sendingInline = false;  // inside onWriteDone for a send that completed at once
  bool sendAgain = false;      // startWrite was asked for during that call
  bool shutdownFailed = false;
};

// The state of one IO thread of the IOCP engine: its completion port and
// buffers. Owned by IocpEngine; used by that IO thread only once it runs.
struct IocpIoThread {
  uint16_t index = 0;
  HANDLE port = nullptr;
  uint64_t now = 0;
  uint64_t nextTick = 0;
  bool finishing = false;
  std::unique_ptr<uint8_t[]> readBuffer;
  std::unique_ptr<WSABUF[]> sendBuffers;  // scratch: WSASend captures the array
};

class IocpEngine final : public EngineBase<IocpConnection, IocpIoThread> {
 public:
  explicit IocpEngine(const EngineOptions& options);
  ~IocpEngine() override;

  EngineError listen(const std::string& ip, uint16_t port, uint16_t* boundPort) override;

 protected:
  ConnectionCore* adoptSocket(IoThreadCore& thread, uint32_t slot, intptr_t socket, bool* ok) override;
  void startWrite(ConnectionCore& c) override;
  void shutdownSend(ConnectionCore& c) override;
  void closeSocket(ConnectionCore& c) override;
  void pauseReading(ConnectionCore& c) override;
  void resumeReading(ConnectionCore& c) override;
  void wakeThread(uint16_t i) override;
  void stopAccepting(IoThreadCore& thread) override;
  void finishThread(IoThreadCore& thread) override;
  uint64_t nowMs(IoThreadCore& thread) override;
  void stepPending(IoThreadCore& thread) override;
  void rejectSocket(intptr_t socket, NotifyCode code) override;
  void run(IocpIoThread& t) override;

 private:
  // One AcceptEx slot. Lives in accepts_, whose size never changes after
  // listen(), so the OVERLAPPED stays put while the kernel holds it.
  struct AcceptRequest {
    OVERLAPPED ov;
    SOCKET socket = INVALID_SOCKET;
    bool pending = false;
    bool overReserve = false;  // its socket is the reserve: no other could be made
    // AcceptEx wants room for each address plus 16 bytes.
    char addresses[2 * (sizeof(sockaddr_in6) + 16)];
  };

  void dispatch(IocpIoThread& t, const OVERLAPPED_ENTRY& entry);
  void onConnectionCompletion(IocpConnection& c, IoKind kind, bool ok, DWORD bytes);
  void release(IocpConnection& c);

  void readAvailable(IocpIoThread& t, IocpConnection& c);
  bool armRead(IocpConnection& c);
  bool postToOwner(IocpConnection& c, IoRequest& req);

  SOCKET newAcceptSocket() const;
  bool postAccept(AcceptRequest& a);
  void onAcceptDone(IocpIoThread& t, AcceptRequest& a, bool ok);
  void retryAccepts();

  IocpIoThread& ioThreadOf(const ConnectionCore& c) { return ioThread(c.thread); }

  std::vector<AcceptRequest> accepts_;
  SOCKET listen_ = INVALID_SOCKET;
  // Made ahead, so that when no socket can be made (out of handles or
  // memory) a connection waiting at accept can still be taken, and refused
  // at once instead of waiting in the backlog. IO thread 0 once it runs.
  SOCKET reserve_ = INVALID_SOCKET;
  int family_ = AF_INET;
  LPFN_ACCEPTEX acceptEx_ = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS getAcceptExSockaddrs_ = nullptr;
  // IO thread 0 only, once the threads run.
  uint32_t acceptsPending_ = 0;
  bool accepting_ = false;
  bool acceptBackoff_ = false;
  bool skipModes_ = false;  // the socket provider hands out real handles (no layered provider)
  uint64_t tickMs_ = 1000;
  bool wsaStarted_ = false;
};

}  // namespace iocpnet
