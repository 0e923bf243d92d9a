// The glue every platform engine puts around EngineCore: one connection
// object per slot (made on first use, then reused), the per-IO-thread state,
// starting and joining the IO threads, and stopping them before destruction.
// A platform engine derives from EngineBase<its connection, its IO thread
// state> and keeps only what its I/O model needs.
//
// Threads: the constructor, startThreads(), join() and stop() run on the JS
// thread (stop() also from the platform engine's destructor); run() is the
// body of each IO thread. Ownership: EngineBase owns the connection objects
// and the IO thread states; both outlive every IO thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "engine_core.h"

namespace iocpnet {

// One read buffer per IO thread: reads are parsed in place, and only the
// bytes of a split packet are kept per connection.
constexpr size_t kReadBufferSize = 64 * 1024;
// Slices handed to one write call (uv_write, WSASend).
constexpr size_t kMaxWriteBuffers = 256;

// Connection derives from ConnectionCore and is default-constructible.
// IoThread is the platform's state of one IO thread.
template <typename Connection, typename IoThread>
class EngineBase : public EngineCore {
 public:
  void join() final {
    if (joined_) return;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    // Before listen() there is nothing to join yet, and threads may follow.
    joined_ = running();
  }

 protected:
  explicit EngineBase(const EngineOptions& options) : EngineCore(options) {
    connections_.resize(options.maxConnections);
  }
  // The IO threads use the platform engine's own members, which are gone by
  // the time this runs: the platform engine's destructor calls stop() first.
  ~EngineBase() override = default;

  // Forces a running engine to shut down and waits for its IO threads.
  void stop() {
    if (running() && !finished()) shutdown(true);
    join();
  }

  ConnectionCore* connectionAt(uint32_t slot) final {
    return slot < connections_.size() ? connections_[slot].get() : nullptr;
  }
  // The connection object of slot (below maxConnections), made on first use.
  Connection& connectionIn(uint32_t slot) {
    std::unique_ptr<Connection>& c = connections_[slot];
    if (!c) c = std::make_unique<Connection>();
    return *c;
  }

  IoThread& ioThread(uint16_t index) { return *ioThreads_[index]; }
  IoThread& ioThread(const IoThreadCore& core) { return *ioThreads_[core.index]; }

  // The end of listen(), once ioThreads_ holds one state per IO thread, set
  // up so that a wake-up can reach it: marks the engine started and runs
  // run() for each on its own thread.
  void startThreads() {
    markStarted();
    threads_.reserve(ioThreads_.size());
    for (std::unique_ptr<IoThread>& t : ioThreads_) {
      IoThread* state = t.get();
      threads_.emplace_back([this, state] { run(*state); });
    }
  }
  // The loop of one IO thread; calls threadExited() when it ends.
  virtual void run(IoThread& thread) = 0;

  // Filled by listen(), before startThreads(); not resized after it.
  std::vector<std::unique_ptr<IoThread>> ioThreads_;

 private:
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::thread> threads_;
  bool joined_ = false;
};

}  // namespace iocpnet
