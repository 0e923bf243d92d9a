// Per-connection queue of slices waiting to be written. Owned and used by the
// connection's IO thread only. The platform engine takes a batch of slices
// for one write (one write in flight at a time) and pops them when it
// completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "chunk.h"

namespace iocpnet {

class SendQueue {
 public:
  void push(Slice slice);
  bool empty() const noexcept { return head_ == slices_.size(); }
  // Bytes queued, the slices of the write in flight included.
  size_t queuedBytes() const noexcept { return queuedBytes_; }
  // Slices not yet handed to a write.
  size_t pendingCount() const noexcept { return slices_.size() - head_ - inFlight_; }
  size_t inFlightCount() const noexcept { return inFlight_; }
  // Slices the queue's array has room for.
  size_t capacity() const noexcept { return slices_.capacity(); }

  // Marks up to maxSlices pending slices as in flight and calls
  // out(data, length) for each; returns how many were taken.
  template <typename Out>
  size_t takeForWrite(size_t maxSlices, Out&& out) {
    size_t start = head_ + inFlight_;
    size_t n = 0;
    while (start + n < slices_.size() && n < maxSlices) {
      const Slice& s = slices_[start + n];
      out(s.data(), s.length);
      ++n;
    }
    inFlight_ += n;
    return n;
  }
  // Bytes of the slices now in flight.
  size_t inFlightBytes() const noexcept;
  // The write in flight finished: drops its slices.
  void completeWrite();
  // Drops everything (destroy).
  void clear();
  // Called now and then: an empty queue lets go of an array a burst grew
  // past kIdleSlices. Not at every write, where the array would be made
  // anew for each burst of a busy connection.
  void trim();
  static constexpr size_t kIdleSlices = 64;

 private:
  std::vector<Slice> slices_;
  size_t head_ = 0;
  size_t inFlight_ = 0;
  size_t queuedBytes_ = 0;
};

}  // namespace iocpnet
