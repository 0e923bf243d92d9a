#include "event_batch.h"

#include <cstring>

namespace iocpnet {

uint8_t* EventBatch::grow(size_t n) {
  size_t at = bytes_.size();
  bytes_.resize(at + n);
  return bytes_.data() + at;
}

void EventBatch::connect(uint32_t id, std::string_view address, uint16_t port, Transport transport) {
  size_t addrLen = address.size() > 255 ? 255 : address.size();
  uint8_t* p = grow(kRecordHead + kConnectFields + addrLen);
  p[0] = static_cast<uint8_t>(InboundKind::Connect);
  writeU32(p + 1, id);
  writeU16(p + kRecordHead, port);
  p[kRecordHead + 2] = static_cast<uint8_t>(transport);
  p[kRecordHead + 3] = static_cast<uint8_t>(addrLen);
  std::memcpy(p + kRecordHead + kConnectFields, address.data(), addrLen);
}

void EventBatch::packet(uint32_t id, uint16_t packetId, const uint8_t* body, uint16_t bodyLength) {
  uint8_t* p = grow(kRecordHead + kPacketFields + bodyLength);
  p[0] = static_cast<uint8_t>(InboundKind::Packet);
  writeU32(p + 1, id);
  writeU16(p + kRecordHead, packetId);
  writeU16(p + kRecordHead + 2, bodyLength);
  if (bodyLength > 0) std::memcpy(p + kRecordHead + kPacketFields, body, bodyLength);
}

void EventBatch::disconnect(uint32_t id, CloseReason reason, bool awaitsRelease) {
  uint8_t* p = grow(kRecordHead + kDisconnectFields);
  p[0] = static_cast<uint8_t>(InboundKind::Disconnect);
  writeU32(p + 1, id);
  p[kRecordHead] = static_cast<uint8_t>(reason);
  p[kRecordHead + 1] = awaitsRelease ? 1 : 0;
}

void InboundQueue::append(EventBatch& batch) { append(batch, 0, 0); }

void InboundQueue::append(EventBatch& batch, uint16_t thread, uint64_t seq) {
  if (batch.empty()) return;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (seq > 0) {
      if (queuedSeqs_.size() <= thread) queuedSeqs_.resize(thread + size_t{1});
      queuedSeqs_[thread] = seq;
    }
    if (bytes_.empty()) {
      bytes_.swap(batch.bytes());
    } else {
      bytes_.insert(bytes_.end(), batch.bytes().begin(), batch.bytes().end());
    }
    pending_.store(bytes_.size(), std::memory_order_relaxed);
    if (!wakePending_) {
      wakePending_ = true;
      wake = true;
    }
  }
  batch.clear();
  if (wake && wake_) wake_();
}

bool InboundQueue::take(std::vector<uint8_t>& out) {
  out.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  out.swap(bytes_);
  takenSeqs_ = queuedSeqs_;
  wakePending_ = false;
  pending_.store(0, std::memory_order_relaxed);
  bool paused = pausedReaders_;
  pausedReaders_ = false;
  return paused;
}

bool InboundQueue::full(size_t unqueued) const noexcept {
  return pending_.load(std::memory_order_relaxed) + unqueued >= maxPendingBytes_;
}

void InboundQueue::notePaused() {
  std::lock_guard<std::mutex> lock(mutex_);
  pausedReaders_ = true;
  // A reader that paused must be resumed even if its last records were
  // already taken, so make sure a take() follows.
  if (!wakePending_) {
    wakePending_ = true;
    if (wake_) wake_();
  }
}

void InboundQueue::wakeAlways() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wakePending_ = true;
  }
  if (wake_) wake_();
}

size_t InboundQueue::pendingBytes() const { return pending_.load(std::memory_order_relaxed); }

}  // namespace iocpnet
