#include "connection_table.h"

#include <stdexcept>

namespace iocpnet {

ConnectionTable::ConnectionTable(uint32_t capacity) : capacity_(capacity), slots_(std::make_unique<Slot[]>(capacity)) {
  if (capacity == 0 || capacity > (1u << 24)) throw std::invalid_argument("connection table capacity out of range");
  // Generations 1..maxGeneration_ keep every id in 32 bits and never 0.
  maxGeneration_ = static_cast<uint32_t>((0xffffffffull - capacity) / capacity);
  free_.reserve(capacity);
  for (uint32_t i = capacity; i > 0; --i) free_.push_back(i - 1);
}

uint32_t ConnectionTable::acquire(uint16_t thread) {
  uint32_t slotIndex;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return 0;
    slotIndex = free_.back();
    free_.pop_back();
  }
  Slot& slot = slots_[slotIndex];
  slot.generation = slot.generation >= maxGeneration_ ? 1 : slot.generation + 1;
  // Release, with the acquire in ownerOf: a command routed to this thread
  // after the slot's reuse sees everything the previous owner did before release().
  slot.thread.store(thread, std::memory_order_release);
  uint32_t id = slotIndex + slot.generation * capacity_;
  slot.id.store(id, std::memory_order_release);
  inUse_.fetch_add(1, std::memory_order_relaxed);
  return id;
}

void ConnectionTable::retire(uint32_t id) noexcept {
  Slot& slot = slots_[slotOf(id)];
  uint32_t expected = id;
  slot.id.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

void ConnectionTable::release(uint32_t id) {
  retire(id);
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(slotOf(id));
  inUse_.fetch_sub(1, std::memory_order_relaxed);
}

int ConnectionTable::ownerOf(uint32_t id) const noexcept {
  if (id == 0) return -1;
  const Slot& slot = slots_[id % capacity_];
  if (slot.id.load(std::memory_order_acquire) != id) return -1;
  return slot.thread.load(std::memory_order_acquire);
}

}  // namespace iocpnet
