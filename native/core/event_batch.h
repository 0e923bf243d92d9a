// Inbound events (connect, packet, disconnect) packed into one byte buffer
// for the JS thread (layout: BatchLayout in lib/contract.ts). Records, little-endian:
//   u8 kind, u32 connection id, then
//   Connect:    u16 remote port, u8 address length, address bytes (text)
//   Packet:     u16 packet id, u16 body length, body
//   Disconnect: u8 CloseReason, u8 awaits release (1: JS must send a Release)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <vector>

#include "protocol.h"

namespace iocpnet {

// Records one IO callback produces, appended to the shared queue in one lock.
// Used by one thread at a time.
class EventBatch {
 public:
  void connect(uint32_t id, std::string_view address, uint16_t port, Transport transport = Transport::Tcp);
  void packet(uint32_t id, uint16_t packetId, const uint8_t* body, uint16_t bodyLength);
  void disconnect(uint32_t id, CloseReason reason, bool awaitsRelease);
  bool empty() const noexcept { return bytes_.empty(); }
  size_t size() const noexcept { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const noexcept { return bytes_; }
  std::vector<uint8_t>& bytes() noexcept { return bytes_; }
  void clear() noexcept { bytes_.clear(); }

 private:
  uint8_t* grow(size_t n);
  std::vector<uint8_t> bytes_;
};

// The buffers of inbound batches go round: the drained one is handed back
// to the queue and then to an IO thread. Up to this capacity one is kept
// for reuse, so that the usual batch needs no allocation; the JS thread
// gives back a larger one (a burst, up to maxPendingBytes) once it has used it.
constexpr size_t kRetainedBatchBytes = 1 << 20;

// The queue of event bytes waiting for the JS thread. IO threads append;
// the JS thread takes everything at once. The first append after a take
// calls wake(), so there is one wake-up per batch however many threads
// append.
class InboundQueue {
 public:
  explicit InboundQueue(size_t maxPendingBytes) : maxPendingBytes_(maxPendingBytes) {}
  void setWake(std::function<void()> wake) { wake_ = std::move(wake); }

  // IO threads: moves the batch's records into the queue and clears it.
  void append(EventBatch& batch);
  // IO threads: as append(batch), for hand-over number seq of IO thread
  // `thread` (numbers rise per thread), which takenSeq() then reports.
  void append(EventBatch& batch, uint16_t thread, uint64_t seq);
  // JS thread: swaps out every record queued so far into out (its previous
  // content is discarded). Returns true if readers were paused for space.
  bool take(std::vector<uint8_t>& out);
  // JS thread: the last hand-over number of IO thread `thread` among the
  // records the last take() took, or an earlier one (0: none yet).
  uint64_t takenSeq(uint16_t thread) const noexcept { return thread < takenSeqs_.size() ? takenSeqs_[thread] : 0; }
  // True while the bytes waiting for JS, with unqueued more of a thread's
  // batch, reach the limit: IO threads stop reading until the JS thread
  // catches up.
  bool full(size_t unqueued = 0) const noexcept;
  // Calls the wake-up even if one is pending (the engine finished).
  void wakeAlways();
  // Marks that a reader paused, so take() reports it.
  void notePaused();
  size_t pendingBytes() const;

 private:
  mutable std::mutex mutex_;
  std::vector<uint8_t> bytes_;
  std::vector<uint64_t> queuedSeqs_;  // under mutex_
  std::vector<uint64_t> takenSeqs_;   // JS thread
  bool wakePending_ = false;
  bool pausedReaders_ = false;
  size_t maxPendingBytes_;
  std::atomic<size_t> pending_{0};
  std::function<void()> wake_;
};

}  // namespace iocpnet
