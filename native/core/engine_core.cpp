#include "engine_core.h"

#include <algorithm>

#include "disconnect_notify.h"

namespace iocpnet {

namespace {
constexpr size_t kEarlyHandOverBytes = 256 * 1024;
// A read while the bytes waiting for JS are at their bound: room for a few
// PINGs, and the most it can add past the bound before its connection pauses.
constexpr size_t kReadWhileFullBytes = 512;
}  // namespace

bool Inbox::post(std::vector<IoCommand>& commands, const std::function<void()>& wake) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) {
    commands.clear();
    return false;
  }
  bool wasEmpty = commands_.empty();
  if (wasEmpty) {
    commands_.swap(commands);
  } else {
    for (IoCommand& c : commands) commands_.push_back(std::move(c));
  }
  commands.clear();
  // Waking under the lock keeps the wake handle alive: the thread closes it
  // only after close(), which takes the same lock.
  if (wasEmpty) wake();
  return true;
}

bool Inbox::post(IoCommand command, const std::function<void()>& wake) {
  std::vector<IoCommand> one;
  one.push_back(std::move(command));
  return post(one, wake);
}

void Inbox::take(std::vector<IoCommand>& out) {
  out.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  out.swap(commands_);
}

void Inbox::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
}

EngineCore::EngineCore(const EngineOptions& options)
    : options_(options), inbound_(options.maxPendingBytes), table_(options.maxConnections) {
  if (options_.ioThreads == 0) options_.ioThreads = 1;
  options_.sendQueueHighWaterBytes = std::min(options_.sendQueueHighWaterBytes, options_.maxSendQueueBytes);
  options_.sendQueueLowWaterBytes = std::min(options_.sendQueueLowWaterBytes, options_.sendQueueHighWaterBytes);
  for (uint32_t i = 0; i < options_.ioThreads; ++i) {
    auto t = std::make_unique<IoThreadCore>();
    t->index = static_cast<uint16_t>(i);
    threads_.push_back(std::move(t));
  }
  routing_.resize(options_.ioThreads);
  drainedSeq_.resize(options_.ioThreads);
}

EngineCore::~EngineCore() = default;

uint64_t EngineCore::total(ThreadStatsField field) const noexcept {
  uint64_t sum = 0;
  for (const std::unique_ptr<IoThreadCore>& t : threads_) sum += t->stats.get(field);
  return sum;
}

// ---- JS thread ----

std::string EngineCore::submit(const uint8_t* data, size_t len) {
  std::string error = validateOutboundBatch(data, len);
  if (!error.empty()) return error;
  // During a shutdown JS still sends: replies, and the releases that let
  // each connection's close go on.
  if (!started_) {
    // Nothing can be sent; count what was refused.
    forEachOutboundRecord(data, len, [&](const OutboundRecord& r) { Stats::add(stats_.staleRefused, r.count); });
    return std::string();
  }
  forEachOutboundRecord(data, len, [&](const OutboundRecord& r) {
    ChunkRef chunk;
    if (r.op == OutboundOp::Send || r.op == OutboundOp::Broadcast) {
      chunk = ChunkRef::allocate(r.packetLength, r.packet);
    }
    for (uint32_t i = 0; i < r.count; ++i) {
      uint32_t id = r.id(i);
      int owner = table_.ownerOf(id);
      if (owner < 0) {
        // A release may follow a close JS asked for itself: nothing to refuse.
        if (r.op != OutboundOp::Release) Stats::add(stats_.staleRefused);
        continue;
      }
      std::vector<IoCommand>& commands = routing_[static_cast<size_t>(owner)];
      if (r.op == OutboundOp::Broadcast) {
        // The thread's command for this broadcast is the last one routed to
        // it if it holds this record's chunk (every record has its own).
        if (commands.empty() || commands.back().slice.chunk.data() != chunk.data()) {
          IoCommand cmd{};
          cmd.kind = IoCommand::Kind::Send;
          cmd.slice = Slice{chunk, 0, r.packetLength};
          // The receivers left are as many as this thread can get (all, with one IO thread).
          cmd.ids.reserve(r.count - i);
          commands.push_back(std::move(cmd));
        }
        commands.back().ids.push_back(id);
        continue;
      }
      IoCommand cmd{};
      cmd.id = id;
      switch (r.op) {
        case OutboundOp::Send:
        case OutboundOp::Broadcast:
          cmd.kind = IoCommand::Kind::Send;
          cmd.slice = Slice{chunk, 0, r.packetLength};
          break;
        case OutboundOp::Close:
          cmd.kind = IoCommand::Kind::Close;
          cmd.notifyCode = r.notifyCode;
          break;
        case OutboundOp::Destroy:
          cmd.kind = IoCommand::Kind::Destroy;
          break;
        case OutboundOp::Release:
          cmd.kind = IoCommand::Kind::Release;
          cmd.reason = static_cast<CloseReason>(r.reason);
          break;
      }
      commands.push_back(std::move(cmd));
    }
  });
  for (uint16_t i = 0; i < routing_.size(); ++i) {
    if (!routing_[i].empty()) threads_[i]->inbox.post(routing_[i], wakerFor(i));
  }
  return std::string();
}

void EngineCore::drain(std::vector<uint8_t>& out) {
  // The previous batch is handled by now, whether or not batchHandled() was called.
  batchHandled();
  bool paused = inbound_.take(out);
  for (uint16_t i = 0; i < threads_.size(); ++i) drainedSeq_[i] = inbound_.takenSeq(i);
  if (paused && started_) {
    for (uint16_t i = 0; i < threads_.size(); ++i) {
      IoCommand cmd{};
      cmd.kind = IoCommand::Kind::Resume;
      threads_[i]->inbox.post(std::move(cmd), wakerFor(i));
    }
  }
}

void EngineCore::batchHandled() {
  if (!started_) return;
  for (uint16_t i = 0; i < threads_.size(); ++i) {
    IoThreadCore& t = *threads_[i];
    // Only a new number may take the flag: a connection waits for a later one.
    if (t.handledSeq.load(std::memory_order_relaxed) == drainedSeq_[i]) continue;
    // Sequentially consistent with awaitHandled(): either this sees its flag,
    // or that thread sees the new number.
    t.handledSeq.store(drainedSeq_[i]);
    if (t.awaitsHandled.exchange(false)) {
      IoCommand cmd{};
      cmd.kind = IoCommand::Kind::Handled;
      t.inbox.post(std::move(cmd), wakerFor(i));
    }
  }
}

void EngineCore::shutdown(bool force) {
  if (!started_) return;
  if (shuttingDown_ && !force) return;
  shuttingDown_ = true;
  IoCommand cmd{};
  cmd.kind = IoCommand::Kind::StopAccepting;
  cmd.force = force;
  threads_[0]->inbox.post(std::move(cmd), wakerFor(0));
  if (force) {
    // Thread 0 may have finished a graceful shutdown already and will not
    // relay this one: tell every thread directly.
    for (uint16_t i = 0; i < threads_.size(); ++i) {
      IoCommand down{};
      down.kind = IoCommand::Kind::Shutdown;
      down.force = true;
      threads_[i]->inbox.post(std::move(down), wakerFor(i));
    }
  }
}

bool EngineCore::finished() const noexcept {
  return !started_ || exited_.load(std::memory_order_acquire) == threads_.size();
}

// ---- IO threads ----

void EngineCore::onAccepted(intptr_t socket, const std::string& address, uint16_t port, IoThreadCore& acceptor) {
  if (acceptor.shuttingDown) {
    rejectSocket(socket, NotifyCode::ServerShutdown);
    return;
  }
  uint16_t thread = static_cast<uint16_t>(nextThread_.fetch_add(1, std::memory_order_relaxed) % threads_.size());
  uint32_t id = table_.acquire(thread);
  if (id == 0) {
    Stats::add(stats_.closes[static_cast<size_t>(CloseReason::ServerFull)]);
    rejectSocket(socket, NotifyCode::ServerFull);
    return;
  }
  IoCommand cmd{};
  cmd.kind = IoCommand::Kind::Adopt;
  cmd.id = id;
  cmd.socket = socket;
  cmd.remoteAddress = address;
  cmd.remotePort = port;
  // Through the inbox even on the acceptor's own thread, so that adopts and
  // the shutdown that follows them keep their order.
  if (!threads_[thread]->inbox.post(std::move(cmd), wakerFor(thread))) {
    // That thread has finished (forced shutdown): the socket never opens.
    rejectSocket(socket, NotifyCode::ServerShutdown);
    table_.release(id);
  }
}

ConnectionCore* EngineCore::lookup(uint32_t id) {
  ConnectionCore* c = connectionAt(table_.slotOf(id));
  if (c == nullptr || c->id != id) return nullptr;
  if (c->phase == ConnectionCore::Phase::Open) return c;
  if (c->phase == ConnectionCore::Phase::Closing && c->awaitingRelease) return c;
  return nullptr;
}

uint64_t EngineCore::tickMs() const noexcept {
  uint64_t period = options_.closeTimeoutMs;
  if (options_.idleTimeoutMs > 0 && options_.idleTimeoutMs < period) period = options_.idleTimeoutMs;
  if (options_.webSocket) {
    period = std::min<uint64_t>({period, options_.transportDetectMs, options_.upgradeTimeoutMs});
  }
  return std::clamp<uint64_t>(period / 4, 10, 1000);
}

void EngineCore::runCommands(IoThreadCore& t) {
  // Read before the take: the replies to what JS has handled are then among
  // the commands taken, and are queued before those requests stop counting.
  uint64_t handled = t.handledSeq.load(std::memory_order_acquire);
  // A Handled command took the flag of the connections that wait: they are
  // checked again, and those still waiting set it again.
  bool recheck = handled != t.handled;
  t.inbox.take(t.commandScratch);
  for (IoCommand& cmd : t.commandScratch) {
    switch (cmd.kind) {
      case IoCommand::Kind::Adopt: {
        uint32_t slot = table_.slotOf(cmd.id);
        if (t.shuttingDown) {
          rejectSocket(cmd.socket, NotifyCode::ServerShutdown);
          table_.release(cmd.id);
          break;
        }
        bool ok = false;
        ConnectionCore* c = adoptSocket(t, slot, cmd.socket, &ok);
        c->id = cmd.id;
        c->thread = t.index;
        c->phase = ConnectionCore::Phase::Pending;
        c->writeInFlight = c->shutdownRequested = c->shutdownDone = c->peerEnded = false;
        c->readPaused = c->writeScheduled = c->awaitingRelease = c->dropOnRelease = false;
        c->flowPaused = false;
        c->unhandledBytes = 0;
        c->unhandledSeq = 0;
        c->pendingNotify = NotifyCode::None;
        c->lastActivityMs = nowMs(t);
        c->closeDeadlineMs = 0;
        c->assembler.reset();
        c->assembler.setMaxPacketSize(options_.maxPacketSize);
        c->sendq.clear();
        c->transport = Transport::Tcp;
        c->ws.reset();
        c->detect = ConnectionCore::Detect::Sniffing;
        c->sniffLength = 0;
        c->pendingDeadlineMs = c->lastActivityMs + options_.transportDetectMs;
        c->remoteAddress = std::move(cmd.remoteAddress);
        c->remotePort = cmd.remotePort;
        c->listIndex = t.connections.size();
        t.connections.push_back(c);
        if (!ok) {
          // Never reported to JS: closed quietly, the slot freed when the socket is gone.
          table_.retire(c->id);
          c->phase = ConnectionCore::Phase::Closing;
          drop(*c);
          break;
        }
        // With WebSocket on, it opens once its transport is known (readPending).
        if (!options_.webSocket) open(*c, t, Transport::Tcp);
        break;
      }
      case IoCommand::Kind::Send: {
        // WebSocket receivers share one framed copy of the packet, made for
        // the first of them: one per broadcast and IO thread.
        Slice framed;
        auto sendTo = [&](uint32_t id, Slice&& slice) {
          ConnectionCore* c = lookup(id);
          if (c == nullptr || c->dropOnRelease) {
            Stats::add(stats_.staleRefused);
            return;
          }
          if (c->transport == Transport::Websocket) {
            if (!framed.chunk) framed = wsFrame(ws::kBinary, slice.data(), slice.length);
            slice = framed;
          }
          enqueue(*c, std::move(slice));
        };
        if (cmd.ids.empty()) {
          sendTo(cmd.id, std::move(cmd.slice));
        } else {
          // Every receiver's reference counted in one step.
          const Slice& shared = cmd.slice;
          shared.chunk.addShared(static_cast<long>(cmd.ids.size()));
          for (uint32_t id : cmd.ids)
            sendTo(id, Slice{ChunkRef::adoptShared(shared.chunk), shared.offset, shared.length});
        }
        break;
      }
      case IoCommand::Kind::Close: {
        ConnectionCore* c = lookup(cmd.id);
        if (c == nullptr) {
          Stats::add(stats_.staleRefused);
          break;
        }
        NotifyCode code = static_cast<NotifyCode>(cmd.notifyCode);
        if (c->awaitingRelease) {
          // JS closed it itself before it saw the engine's Disconnect record:
          // its notify goes out instead, once JS releases the connection.
          c->pendingNotify = code;
          break;
        }
        CloseReason reason = code == NotifyCode::ProtocolError ? CloseReason::ProtocolError : CloseReason::Kicked;
        beginClose(*c, reason, code, CloseMode::Graceful);
        break;
      }
      case IoCommand::Kind::Destroy: {
        ConnectionCore* c = lookup(cmd.id);
        if (c == nullptr) {
          Stats::add(stats_.staleRefused);
          break;
        }
        if (c->awaitingRelease) {
          // Dropped when JS releases it; nothing more is queued meanwhile.
          c->dropOnRelease = true;
        } else {
          beginClose(*c, CloseReason::Kicked, NotifyCode::None, CloseMode::Drop);
        }
        break;
      }
      case IoCommand::Kind::Release: {
        ConnectionCore* c = lookup(cmd.id);
        if (c == nullptr || !c->awaitingRelease) break;
        // JS decided the reason it reported; the counts follow it.
        recount(*c, cmd.reason);
        if (c->dropOnRelease) {
          drop(*c);
        } else {
          release(*c);
        }
        break;
      }
      case IoCommand::Kind::Resume:
        for (ConnectionCore* c : t.connections) {
          if (c->readPaused && c->phase != ConnectionCore::Phase::Dropping) {
            c->readPaused = false;
            // Its idle time starts again now: while paused it was waiting for the server.
            c->lastActivityMs = nowMs(t);
            if (!c->flowPaused) resumeReading(*c);
          }
        }
        break;
      case IoCommand::Kind::Handled:
        recheck = true;  // the check after the commands does the work
        break;
      case IoCommand::Kind::StopAccepting: {
        stopAccepting(t);
        t.shuttingDown = true;
        // Every adopt this thread handed out is queued before these.
        for (uint16_t i = 0; i < threads_.size(); ++i) {
          IoCommand down{};
          down.kind = IoCommand::Kind::Shutdown;
          down.force = cmd.force;
          threads_[i]->inbox.post(std::move(down), wakerFor(i));
        }
        break;
      }
      case IoCommand::Kind::Shutdown: {
        t.shuttingDown = true;
        if (cmd.force) {
          closeAll(t, true);
          break;
        }
        // A graceful shutdown closes nothing until every thread has stopped
        // delivering packets and handed over those it read: otherwise a
        // packet from one thread could reach JS after another thread's
        // connections were reported gone (a room chat accepted after one of
        // its members had left would never reach that member).
        t.draining = true;
        handOver(t);
        if (drained_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_.size()) {
          for (uint16_t i = 0; i < threads_.size(); ++i) {
            IoCommand all{};
            all.kind = IoCommand::Kind::CloseAll;
            threads_[i]->inbox.post(std::move(all), wakerFor(i));
          }
        }
        checkThreadDone(t);
        break;
      }
      case IoCommand::Kind::CloseAll:
        closeAll(t, false);
        break;
    }
  }
  t.commandScratch.clear();
  t.handled = handled;
  if (recheck) {
    // Backwards: a resumed connection is swap-removed from the list.
    for (size_t i = t.flowPaused.size(); i-- > 0;) checkLowWater(*t.flowPaused[i]);
  }
}

void EngineCore::closeAll(IoThreadCore& t, bool force) {
  // Copy: closing may reorder the list.
  std::vector<ConnectionCore*> all = t.connections;
  for (ConnectionCore* c : all) {
    if (c->phase == ConnectionCore::Phase::Pending) {
      if (c->detect == ConnectionCore::Detect::Handshake) {
        if (force) {
          Stats::add(stats_.closes[static_cast<size_t>(CloseReason::UpgradeRefused)]);
          drop(*c);
        } else {
          refuseUpgrade(*c, CloseReason::UpgradeRefused, httpErrorResponse(503));
        }
        continue;
      }
      // A raw client that has not spoken yet closes as an open one does
      // (the bytes it held are not read: the server is draining).
      c->sniffLength = 0;
      ReadState rs;
      openAsTcp(*c, t, rs);
    }
    if (c->phase == ConnectionCore::Phase::Open) {
      beginClose(*c, CloseReason::Shutdown, force ? NotifyCode::None : NotifyCode::ServerShutdown,
                 force ? CloseMode::Drop : CloseMode::AfterRelease);
    } else if (force) {
      drop(*c);
    }
  }
  checkThreadDone(t);
}

void EngineCore::enqueue(ConnectionCore& c, Slice slice, bool countPacket) {
  if (c.sendq.queuedBytes() + slice.length > options_.maxSendQueueBytes) {
    if (c.phase == ConnectionCore::Phase::Open)
      beginClose(c, CloseReason::SlowConsumer, NotifyCode::None, CloseMode::Drop);
    else drop(c);
    return;
  }
  if (countPacket) threadOf(c).stats.add(ThreadStatsField::PacketsOut);
  pushSend(c, std::move(slice));
  markDirty(c);
  checkHighWater(c);
}

size_t EngineCore::queued(const ConnectionCore& c) const {
  // The replies to requests JS has not handled yet are on their way here:
  // they count now, so that a client's pipelined requests cannot fill its
  // queue past maxSendQueueBytes after its reads paused.
  bool unhandled = c.unhandledSeq > threads_[c.thread]->handled;
  return c.sendq.queuedBytes() + (unhandled ? c.unhandledBytes : 0);
}

void EngineCore::checkHighWater(ConnectionCore& c) {
  if (c.flowPaused || c.phase != ConnectionCore::Phase::Open) return;
  if (queued(c) <= options_.sendQueueHighWaterBytes) return;
  IoThreadCore& t = threadOf(c);
  c.flowPaused = true;
  c.flowIndex = t.flowPaused.size();
  t.flowPaused.push_back(&c);
  Stats::add(stats_.readPausesSendQueue);
  if (!c.readPaused) pauseReading(c);
  // Mostly unhandled requests: the resume waits for JS, not for a write.
  if (c.sendq.queuedBytes() <= options_.sendQueueLowWaterBytes) awaitHandled(c);
}

void EngineCore::checkLowWater(ConnectionCore& c) {
  if (!c.flowPaused) return;
  if (queued(c) > options_.sendQueueLowWaterBytes) {
    if (c.sendq.queuedBytes() <= options_.sendQueueLowWaterBytes) awaitHandled(c);
    return;
  }
  endFlowPause(c);
  // Its idle time starts again now: while paused it could not be read.
  c.lastActivityMs = nowMs(threadOf(c));
  if (!c.readPaused) resumeReading(c);
}

void EngineCore::endFlowPause(ConnectionCore& c) {
  if (!c.flowPaused) return;
  IoThreadCore& t = threadOf(c);
  c.flowPaused = false;
  size_t i = c.flowIndex;
  if (i < t.flowPaused.size() && t.flowPaused[i] == &c) {
    t.flowPaused[i] = t.flowPaused.back();
    t.flowPaused[i]->flowIndex = i;
    t.flowPaused.pop_back();
  }
}

void EngineCore::awaitHandled(ConnectionCore& c) {
  IoThreadCore& t = threadOf(c);
  // Sequentially consistent with batchHandled(), which posts Handled when it
  // sees the flag. If JS handled these requests already, this thread's copy
  // is behind: a Handled of its own brings it up to date.
  t.awaitsHandled.store(true);
  if (t.handledSeq.load() >= c.unhandledSeq && t.handled < c.unhandledSeq) {
    IoCommand cmd{};
    cmd.kind = IoCommand::Kind::Handled;
    t.inbox.post(std::move(cmd), wakerFor(t.index));
  }
}

void EngineCore::handOver(IoThreadCore& t) {
  if (t.events.empty()) return;
  inbound_.append(t.events, t.index, ++t.appendCount);
}

void EngineCore::enqueueSystemPacket(ConnectionCore& c, uint16_t packetId, const uint8_t* body, size_t bodyLength) {
  if (c.transport == Transport::Websocket) {
    uint8_t header[kHeaderSize];
    writeHeader(header, packetId, bodyLength);
    enqueue(c, wsFrame(ws::kBinary, header, kHeaderSize, body, bodyLength));
    return;
  }
  ChunkRef chunk = ChunkRef::allocate(kHeaderSize + bodyLength);
  writeHeader(chunk.data(), packetId, bodyLength);
  if (bodyLength > 0) std::memcpy(chunk.data() + kHeaderSize, body, bodyLength);
  uint32_t length = static_cast<uint32_t>(chunk.size());
  enqueue(c, Slice{std::move(chunk), 0, length});
}

void EngineCore::markDirty(ConnectionCore& c) {
  if (c.writeScheduled) return;
  c.writeScheduled = true;
  IoThreadCore& t = threadOf(c);
  if (t.dirty.empty()) stepPending(t);
  t.dirty.push_back(&c);
}

void EngineCore::endStep(IoThreadCore& t) {
  // Everything queued on a connection during this step goes out in one write.
  for (size_t i = 0; i < t.dirty.size(); ++i) {
    ConnectionCore* c = t.dirty[i];
    c->writeScheduled = false;
    if (c->phase == ConnectionCore::Phase::Open || c->phase == ConnectionCore::Phase::Closing) {
      if (!c->writeInFlight && c->sendq.pendingCount() > 0) startWrite(*c);
      if (c->phase == ConnectionCore::Phase::Closing) continueClose(*c);
    }
  }
  t.dirty.clear();
  handOver(t);
}

size_t EngineCore::readLimit(const ConnectionCore& c, size_t bufferSize) {
  if (c.phase != ConnectionCore::Phase::Open || !inbound_.full(threads_[c.thread]->events.size())) return bufferSize;
  return std::min(bufferSize, kReadWhileFullBytes);
}

void EngineCore::onData(ConnectionCore& c, const uint8_t* data, size_t len) {
  IoThreadCore& t = threadOf(c);
  t.stats.add(ThreadStatsField::BytesIn, len);
  bool pending = c.phase == ConnectionCore::Phase::Pending;
  if ((c.phase != ConnectionCore::Phase::Open && !pending) || t.draining) return;  // closing: discard
  c.lastActivityMs = nowMs(t);
  ReadState rs;
  rs.full = inbound_.full(t.events.size());
  if (pending) {
    readPending(c, t, data, len, rs);
  } else if (c.transport == Transport::Websocket) {
    readWebSocket(c, t, data, len, rs);
  } else {
    feedPackets(c, t, data, len, rs);
  }
  finishRead(c, t, rs);
}

bool EngineCore::feedPackets(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs) {
  FrameError error = c.assembler.feed(data, len, [&](const PacketView& p) {
    t.stats.add(ThreadStatsField::PacketsIn);
    if (p.id >= kFirstAppPacketId) {
      t.events.packet(c.id, p.id, p.body, p.bodyLength);
      rs.forJs = true;
      rs.delivered += static_cast<uint32_t>(kHeaderSize + p.bodyLength);
      return true;
    }
    if (p.id == kPingId) {
      if (p.bodyLength > kMaxPingBody) return false;
      Stats::add(stats_.pings);
      enqueueSystemPacket(c, kPongId, p.body, p.bodyLength);
      // A slow consumer may have been closed by the PONG.
      return c.phase == ConnectionCore::Phase::Open;
    }
    Stats::add(stats_.ignoredSystemPackets);
    return true;
  });
  if (error != FrameError::None && c.phase == ConnectionCore::Phase::Open) {
    if (c.ws) c.ws->closeCode = static_cast<uint16_t>(WsCloseCode::ProtocolError);
    beginClose(c, CloseReason::ProtocolError, NotifyCode::ProtocolError, CloseMode::AfterRelease);
  }
  return c.phase == ConnectionCore::Phase::Open;
}

void EngineCore::finishRead(ConnectionCore& c, IoThreadCore& t, const ReadState& rs) {
  if (c.phase != ConnectionCore::Phase::Open) return;
  // Past the bound, a connection stops reading once it has more for JS than
  // PINGs (a packet, or part of one): TCP then pushes back on its sender.
  bool partial = c.assembler.partialBytes() > 0 || (c.ws && c.ws->frames.midFrame());
  if (rs.full && (rs.forJs || partial)) notePaused(c);
  if (rs.delivered > 0) {
    // These packets go out with the next hand-over.
    if (c.unhandledSeq <= t.handled) c.unhandledBytes = 0;
    c.unhandledBytes += rs.delivered;
    c.unhandledSeq = t.appendCount + 1;
    checkHighWater(c);
  }
  // One loop turn may read from many connections: hand large batches over
  // early so that the bound on bytes waiting for JS sees them.
  if (t.events.size() >= kEarlyHandOverBytes) handOver(t);
}

void EngineCore::readWebSocket(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs) {
  // The sink of the frame parser: binary payload into the packet stream,
  // PING answered with PONG, CLOSE remembered for the echo.
  struct Sink {
    EngineCore& engine;
    ConnectionCore& c;
    IoThreadCore& t;
    ReadState& rs;
    bool onBinary(const uint8_t* p, size_t n) { return engine.feedPackets(c, t, p, n, rs); }
    void onPing(const uint8_t* p, size_t n) {
      if (c.phase == ConnectionCore::Phase::Open) engine.enqueue(c, wsFrame(ws::kPong, p, n), false);
    }
    void onClose(bool hasCode, uint16_t code) { c.ws->closeCode = hasCode ? code : WebSocketState::kNoCloseCode; }
  };
  Sink sink{*this, c, t, rs};
  if (t.wsScratch.empty()) t.wsScratch.resize(16 * 1024);
  WsFeed f = c.ws->frames.feed(data, len, t.wsScratch.data(), t.wsScratch.size(), sink);
  if (c.phase != ConnectionCore::Phase::Open) return;
  switch (f) {
    case WsFeed::Ok:
    case WsFeed::Stopped:
      break;
    case WsFeed::Closed:
      // The closing handshake: replies to what came before it, then the echo, then FIN.
      beginClose(c, CloseReason::Closed, NotifyCode::None, CloseMode::AfterRelease);
      break;
    default:
      failWebSocket(c, f);
      break;
  }
}

void EngineCore::failWebSocket(ConnectionCore& c, WsFeed why) {
  c.ws->closeCode = static_cast<uint16_t>(wsCloseCodeFor(why));
  beginClose(c, CloseReason::ProtocolError, NotifyCode::ProtocolError, CloseMode::AfterRelease);
}

void EngineCore::readPending(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs) {
  if (c.detect == ConnectionCore::Detect::Handshake) {
    readHandshake(c, t, data, len, rs);
    return;
  }
  size_t used = 0;
  while (c.sniffLength < kUpgradePrefix.size() && used < len) {
    if (data[used] != static_cast<uint8_t>(kUpgradePrefix[c.sniffLength])) {
      // Not `GET `: the raw framing, from the first byte held on.
      openAsTcp(c, t, rs);
      if (c.phase == ConnectionCore::Phase::Open) feedPackets(c, t, data + used, len - used, rs);
      return;
    }
    c.sniff[c.sniffLength++] = data[used++];
  }
  if (c.sniffLength < kUpgradePrefix.size()) return;  // a prefix of `GET ` so far
  c.detect = ConnectionCore::Detect::Handshake;
  c.pendingDeadlineMs = nowMs(t) + options_.upgradeTimeoutMs;
  c.ws = std::make_unique<WebSocketState>(options_.maxUpgradeRequestBytes, options_.maxPacketSize);
  readHandshake(c, t, c.sniff, c.sniffLength, rs);
  if (used < len) readHandshake(c, t, data + used, len - used, rs);
}

void EngineCore::readHandshake(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs) {
  if (c.phase == ConnectionCore::Phase::Open) {
    // Frames the client sent right behind its request.
    readWebSocket(c, t, data, len, rs);
    return;
  }
  if (c.phase != ConnectionCore::Phase::Pending) return;
  size_t consumed = 0;
  UpgradeOutcome outcome = c.ws->upgrade.feed(data, len, options_.webSocketOrigins, &consumed);
  if (outcome.kind == UpgradeOutcome::Kind::NeedMore) return;
  if (outcome.kind == UpgradeOutcome::Kind::Refuse) {
    refuseUpgrade(c, CloseReason::UpgradeRefused, std::move(outcome.response));
    return;
  }
  c.ws->upgrade.release();
  enqueueBytes(c, reinterpret_cast<const uint8_t*>(outcome.response.data()), outcome.response.size());
  open(c, t, Transport::Websocket);
  if (consumed < len) readWebSocket(c, t, data + consumed, len - consumed, rs);
}

void EngineCore::open(ConnectionCore& c, IoThreadCore& t, Transport transport) {
  c.phase = ConnectionCore::Phase::Open;
  c.transport = transport;
  open_.fetch_add(1, std::memory_order_relaxed);
  t.stats.add(ThreadStatsField::Connections);
  Stats::add(stats_.accepted);
  t.events.connect(c.id, c.remoteAddress, c.remotePort, transport);
}

void EngineCore::openAsTcp(ConnectionCore& c, IoThreadCore& t, ReadState& rs) {
  open(c, t, Transport::Tcp);
  uint8_t held[sizeof c.sniff];
  size_t heldLength = c.sniffLength;
  std::memcpy(held, c.sniff, heldLength);
  c.sniffLength = 0;
  if (heldLength > 0) feedPackets(c, t, held, heldLength, rs);
}

void EngineCore::refuseUpgrade(ConnectionCore& c, CloseReason reason, std::string response) {
  Stats::add(stats_.closes[static_cast<size_t>(reason)]);
  c.phase = ConnectionCore::Phase::Closing;
  table_.retire(c.id);
  if (c.ws) c.ws->upgrade.release();
  c.closeDeadlineMs = nowMs(threadOf(c)) + options_.closeTimeoutMs;
  enqueueBytes(c, reinterpret_cast<const uint8_t*>(response.data()), response.size());
}

void EngineCore::enqueueBytes(ConnectionCore& c, const uint8_t* data, size_t len) {
  ChunkRef chunk = ChunkRef::allocate(len, data);
  pushSend(c, Slice{std::move(chunk), 0, static_cast<uint32_t>(len)});
  markDirty(c);
}

void EngineCore::pushSend(ConnectionCore& c, Slice slice) {
  threadOf(c).stats.add(ThreadStatsField::SendQueueBytes, slice.length);
  c.sendq.push(std::move(slice));
}

Slice EngineCore::wsFrame(uint8_t opcode, const uint8_t* a, size_t aLength, const uint8_t* b, size_t bLength) {
  size_t payload = aLength + bLength;
  size_t header = wsHeaderSize(payload);
  ChunkRef chunk = ChunkRef::allocate(header + payload);
  uint8_t* p = chunk.data();
  writeWsHeader(p, opcode, payload);
  if (aLength > 0) std::memcpy(p + header, a, aLength);
  if (bLength > 0) std::memcpy(p + header + aLength, b, bLength);
  uint32_t length = static_cast<uint32_t>(chunk.size());
  return Slice{std::move(chunk), 0, length};
}

void EngineCore::notePaused(ConnectionCore& c) {
  Stats::add(stats_.readPauses);
  c.readPaused = true;
  pauseReading(c);
  inbound_.notePaused();
}

void EngineCore::onPeerEnded(ConnectionCore& c) {
  c.peerEnded = true;
  if (c.phase == ConnectionCore::Phase::Pending) {
    if (c.detect == ConnectionCore::Detect::Handshake) {
      // An upgrade request cut short: never open, nothing to answer.
      Stats::add(stats_.closes[static_cast<size_t>(CloseReason::UpgradeRefused)]);
      drop(c);
      return;
    }
    // A raw client that sent at most a prefix of `GET `: it opens and closes as before.
    ReadState rs;
    openAsTcp(c, threadOf(c), rs);
  }
  if (c.phase == ConnectionCore::Phase::Open) {
    // Half-close: what the peer asked for before its FIN still gets answered.
    beginClose(c, CloseReason::Closed, NotifyCode::None, CloseMode::AfterRelease);
  } else if (c.phase == ConnectionCore::Phase::Closing) {
    continueClose(c);
  }
}

void EngineCore::onReadError(ConnectionCore& c) {
  if (c.phase == ConnectionCore::Phase::Pending) {
    if (c.detect == ConnectionCore::Detect::Handshake) {
      Stats::add(stats_.closes[static_cast<size_t>(CloseReason::UpgradeRefused)]);
      drop(c);
      return;
    }
    c.sniffLength = 0;
    ReadState rs;
    openAsTcp(c, threadOf(c), rs);
  }
  if (c.phase == ConnectionCore::Phase::Open) {
    beginClose(c, CloseReason::Reset, NotifyCode::None, CloseMode::Drop);
  } else {
    drop(c);
  }
}

void EngineCore::onWriteDone(ConnectionCore& c, bool ok) {
  IoThreadCore& t = threadOf(c);
  size_t written = c.sendq.inFlightBytes();
  if (ok) t.stats.add(ThreadStatsField::BytesOut, written);
  t.stats.sub(ThreadStatsField::SendQueueBytes, written);
  c.sendq.completeWrite();
  c.writeInFlight = false;
  if (c.phase == ConnectionCore::Phase::Dropping) return;
  if (!ok) {
    if (c.phase == ConnectionCore::Phase::Open) {
      beginClose(c, CloseReason::Reset, NotifyCode::None, CloseMode::Drop);
    } else {
      drop(c);
    }
    return;
  }
  checkLowWater(c);
  // What queued behind the finished write goes out now, as one write.
  if (c.sendq.pendingCount() > 0) startWrite(c);
  else if (c.phase == ConnectionCore::Phase::Closing) continueClose(c);
}

void EngineCore::onShutdownDone(ConnectionCore& c) {
  c.shutdownDone = true;
  if (c.phase == ConnectionCore::Phase::Closing) continueClose(c);
}

void EngineCore::beginClose(ConnectionCore& c, CloseReason reason, NotifyCode notify, CloseMode mode) {
  if (c.phase != ConnectionCore::Phase::Open) return;
  IoThreadCore& t = threadOf(c);
  c.phase = ConnectionCore::Phase::Closing;
  open_.fetch_sub(1, std::memory_order_relaxed);
  t.stats.sub(ThreadStatsField::Connections);
  Stats::add(stats_.closes[static_cast<size_t>(reason)]);
  c.closeReason = reason;
  t.events.disconnect(c.id, reason, mode == CloseMode::AfterRelease);
  c.assembler.reset();
  bool paused = c.readPaused || c.flowPaused;
  endFlowPause(c);
  if (mode == CloseMode::Drop) {
    drop(c);
    return;
  }
  if (paused) {
    // Keep reading so that the peer's FIN is seen; the bytes are discarded.
    c.readPaused = false;
    resumeReading(c);
  }
  c.closeDeadlineMs = nowMs(t) + options_.closeTimeoutMs;
  if (mode == CloseMode::AfterRelease) {
    // The id stays addressable: replies to the packets delivered before the
    // Disconnect record still go out, ahead of the notify.
    c.awaitingRelease = true;
    c.pendingNotify = notify;
    return;
  }
  table_.retire(c.id);
  queueNotify(c, notify);
  markDirty(c);
}

void EngineCore::recount(ConnectionCore& c, CloseReason reason) {
  if (reason == c.closeReason) return;
  stats_.closes[static_cast<size_t>(c.closeReason)].fetch_sub(1, std::memory_order_relaxed);
  Stats::add(stats_.closes[static_cast<size_t>(reason)]);
  c.closeReason = reason;
}

void EngineCore::release(ConnectionCore& c) {
  c.awaitingRelease = false;
  table_.retire(c.id);
  queueNotify(c, c.pendingNotify);
  c.pendingNotify = NotifyCode::None;
  markDirty(c);
}

namespace {
// The CLOSE code of an engine-begun close that no frame decided.
uint16_t wsCloseCodeForNotify(NotifyCode notify) {
  switch (notify) {
    case NotifyCode::ServerShutdown:
    case NotifyCode::IdleTimeout:
      return static_cast<uint16_t>(WsCloseCode::GoingAway);
    case NotifyCode::ProtocolError:
      return static_cast<uint16_t>(WsCloseCode::ProtocolError);
    case NotifyCode::SlowConsumer:
      return static_cast<uint16_t>(WsCloseCode::PolicyViolation);
    default:
      return static_cast<uint16_t>(WsCloseCode::Normal);
  }
}
}  // namespace

void EngineCore::queueNotify(ConnectionCore& c, NotifyCode notify) {
  // Both go out even past maxSendQueueBytes: they are the last frames.
  if (notify != NotifyCode::None) {
    DisconnectNotifyPacket packet = disconnectNotifyPacket(notify);
    threadOf(c).stats.add(ThreadStatsField::PacketsOut);
    if (c.transport == Transport::Websocket) {
      pushSend(c, wsFrame(ws::kBinary, packet.data(), packet.size()));
    } else {
      ChunkRef chunk = ChunkRef::allocate(packet.size(), packet.data());
      pushSend(c, Slice{std::move(chunk), 0, kDisconnectNotifySize});
    }
  }
  if (c.transport == Transport::Websocket && c.ws && !c.ws->closeSent) {
    // The closing handshake: the server's CLOSE is its last frame.
    c.ws->closeSent = true;
    uint16_t code = c.ws->closeCode != 0 ? c.ws->closeCode : wsCloseCodeForNotify(notify);
    uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
    pushSend(c, wsFrame(ws::kClose, payload, code == WebSocketState::kNoCloseCode ? 0 : 2));
  }
}

void EngineCore::continueClose(ConnectionCore& c) {
  if (c.phase != ConnectionCore::Phase::Closing || c.awaitingRelease) return;
  if (c.writeInFlight || c.sendq.pendingCount() > 0) return;  // endStep starts the write
  if (!c.shutdownRequested) {
    c.shutdownRequested = true;
    shutdownSend(c);
    return;
  }
  // FIN sent; close once the peer has finished too, so that nothing it
  // still sends turns into a reset that could destroy our last packets.
  if (c.shutdownDone && c.peerEnded) drop(c);
}

void EngineCore::drop(ConnectionCore& c) {
  if (c.phase == ConnectionCore::Phase::Dropping || c.phase == ConnectionCore::Phase::Free) return;
  table_.retire(c.id);
  c.awaitingRelease = false;
  if (c.phase == ConnectionCore::Phase::Open) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    threadOf(c).stats.sub(ThreadStatsField::Connections);
  }
  c.phase = ConnectionCore::Phase::Dropping;
  closeSocket(c);
}

void EngineCore::onSocketClosed(ConnectionCore& c) {
  IoThreadCore& t = threadOf(c);
  t.stats.sub(ThreadStatsField::SendQueueBytes, c.sendq.queuedBytes());
  c.sendq.clear();
  c.assembler.reset();
  c.ws.reset();
  c.transport = Transport::Tcp;
  endFlowPause(c);
  c.phase = ConnectionCore::Phase::Free;
  // Swap-remove from the thread's list.
  size_t i = c.listIndex;
  if (i < t.connections.size() && t.connections[i] == &c) {
    t.connections[i] = t.connections.back();
    t.connections[i]->listIndex = i;
    t.connections.pop_back();
  }
  // A closed connection may still sit in the dirty list of this step.
  t.dirty.erase(std::remove(t.dirty.begin(), t.dirty.end(), &c), t.dirty.end());
  c.writeScheduled = false;
  uint32_t id = c.id;
  c.id = 0;
  table_.release(id);
  checkThreadDone(t);
}

void EngineCore::onTimer(IoThreadCore& t) {
  uint64_t now = nowMs(t);
  uint64_t idle = options_.idleTimeoutMs;
  std::vector<ConnectionCore*> all = t.connections;
  for (ConnectionCore* c : all) {
    c->sendq.trim();
    if (c->phase == ConnectionCore::Phase::Pending) {
      if (now < c->pendingDeadlineMs) continue;
      if (c->detect == ConnectionCore::Detect::Handshake) {
        refuseUpgrade(*c, CloseReason::UpgradeTimeout, httpErrorResponse(408));
        continue;
      }
      // Silent for transportDetectMs: a raw client waiting for the server to
      // speak first. Its idle time starts now, as it would have at accept.
      c->lastActivityMs = now;
      ReadState rs;
      rs.full = inbound_.full(t.events.size());
      openAsTcp(*c, t, rs);
      finishRead(*c, t, rs);
      continue;
    }
    if (c->phase == ConnectionCore::Phase::Open) {
      // A connection the server stopped reading while JS is behind is not
      // idle: its bytes wait unread (maxPendingBytes, or flow control that
      // waits only for JS to handle its requests).
      bool waitsForJs = c->readPaused || (c->flowPaused && c->sendq.queuedBytes() <= options_.sendQueueLowWaterBytes);
      if (idle > 0 && !waitsForJs && now - c->lastActivityMs >= idle) {
        beginClose(*c, CloseReason::IdleTimeout, NotifyCode::IdleTimeout, CloseMode::AfterRelease);
      }
    } else if (c->phase == ConnectionCore::Phase::Closing && now >= c->closeDeadlineMs) {
      drop(*c);
    }
  }
}

void EngineCore::checkThreadDone(IoThreadCore& t) {
  if (t.shuttingDown && !t.finished && t.connections.empty()) {
    t.finished = true;
    t.inbox.close();
    finishThread(t);
  }
}

void EngineCore::threadExited(IoThreadCore& t) {
  handOver(t);
  exited_.fetch_add(1, std::memory_order_acq_rel);
  // The last thread out wakes JS so that it sees finished().
  if (exited_.load(std::memory_order_acquire) == threads_.size()) inbound_.wakeAlways();
}

}  // namespace iocpnet
