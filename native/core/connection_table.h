// Preallocated connection slots with generation-tagged ids. An id is
// slot + generation * capacity, so a stale id never names a reused slot.
// acquire/release are called by IO threads (acceptor and closer); lookup is
// called by the JS thread to refuse stale ids before routing a command. The
// owning IO thread checks the id again before acting.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace iocpnet {

class ConnectionTable {
 public:
  explicit ConnectionTable(uint32_t capacity);

  uint32_t capacity() const noexcept { return capacity_; }
  // Takes a free slot and gives it a new id; returns 0 when full.
  uint32_t acquire(uint16_t thread);
  // The connection stops being addressable (sends to it are refused) but the
  // slot is not reusable yet.
  void retire(uint32_t id) noexcept;
  // The slot's socket is gone: the slot may be reused.
  void release(uint32_t id);
  // The IO thread owning id, or -1 when id is not open.
  int ownerOf(uint32_t id) const noexcept;
  bool isOpen(uint32_t id) const noexcept { return ownerOf(id) >= 0; }
  uint32_t slotOf(uint32_t id) const noexcept { return id % capacity_; }
  // Slots taken (open or closing).
  uint32_t inUse() const noexcept { return inUse_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    std::atomic<uint32_t> id{0};  // 0 when not addressable
    uint32_t generation = 0;
    std::atomic<uint16_t> thread{0};
  };
  uint32_t capacity_;
  uint32_t maxGeneration_;
  std::unique_ptr<Slot[]> slots_;
  std::mutex mutex_;
  std::vector<uint32_t> free_;
  std::atomic<uint32_t> inUse_{0};
};

}  // namespace iocpnet
