// The libuv engine (Linux, macOS): one uv_loop per IO thread, an acceptor on
// IO thread 0 that accepts on a raw listening socket and hands each socket to
// an IO thread round-robin. Uses the libuv that the running Node exports.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "../core/engine_base.h"

namespace iocpnet {

class UvEngine;

// A connection of the libuv engine. Owned by UvEngine (one per slot, reused);
// used by the IO thread that adopted it.
struct UvConnection : ConnectionCore {
  uv_tcp_t tcp;
  uv_write_t writeReq;
  uv_shutdown_t shutdownReq;
  UvEngine* engine = nullptr;
};

// The state of one IO thread of the libuv engine. Owned by UvEngine; its
// handles are set up by listen() and used by that IO thread only.
struct UvIoThread {
  UvEngine* engine = nullptr;
  uint16_t index = 0;
  uv_loop_t loop;
  uv_async_t async;
  uv_timer_t timer;
  uv_check_t check;
  uv_idle_t idle;  // active while work waits for the check phase: keeps poll from blocking
  uv_poll_t acceptPoll;
  uv_timer_t acceptRetry;  // thread 0: polls the listener again after a back-off
  bool accepting = false;
  std::unique_ptr<uint8_t[]> readBuffer;
  // A write of several slices is first gathered here and tried as one run.
  std::unique_ptr<uint8_t[]> writeBuffer;
};

class UvEngine final : public EngineBase<UvConnection, UvIoThread> {
 public:
  explicit UvEngine(const EngineOptions& options);
  ~UvEngine() override;

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
  void run(UvIoThread& t) override;

 private:
  void acceptAll(UvIoThread& t);
  // Out of descriptors: takes the waiting connection over the reserve descriptor.
  enum class OverReserve : uint8_t { Taken, NoneWaiting, NoReserve };
  OverReserve acceptOverReserve(UvIoThread& t);
  void handOver(int fd, const sockaddr_storage& addr, UvIoThread& t);
  // Stops polling the listener for a moment instead of spinning on it.
  void backOff(UvIoThread& t);
  static UvIoThread& ioThreadOf(uv_handle_t* h) { return *static_cast<UvIoThread*>(h->data); }
  static UvConnection& connectionOf(uv_handle_t* h) { return *static_cast<UvConnection*>(h->data); }

  static void onAsync(uv_async_t* h);
  static void onTimer(uv_timer_t* h);
  static void onCheck(uv_check_t* h);
  static void onAcceptReady(uv_poll_t* h, int status, int events);
  static void onAcceptRetry(uv_timer_t* h);
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onShutdown(uv_shutdown_t* req, int status);
  static void onClose(uv_handle_t* h);

  int listenFd_ = -1;
  // Held open so that one descriptor can be given up to accept, and then
  // refuse, a connection when the process has none left (IO thread 0).
  int reserveFd_ = -1;
};

}  // namespace iocpnet
