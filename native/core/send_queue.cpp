#include "send_queue.h"

#include <utility>

namespace iocpnet {

void SendQueue::push(Slice slice) {
  queuedBytes_ += slice.length;
  slices_.push_back(std::move(slice));
}

size_t SendQueue::inFlightBytes() const noexcept {
  size_t bytes = 0;
  for (size_t i = head_; i < head_ + inFlight_; ++i) bytes += slices_[i].length;
  return bytes;
}

void SendQueue::completeWrite() {
  for (size_t i = head_; i < head_ + inFlight_; ++i) {
    queuedBytes_ -= slices_[i].length;
    slices_[i].chunk.reset();
  }
  head_ += inFlight_;
  inFlight_ = 0;
  if (head_ == slices_.size()) {
    // The array is kept for the next write; trim() lets go of it when it stays idle.
    slices_.clear();
    head_ = 0;
  } else if (head_ > 1024 && head_ * 2 > slices_.size()) {
    slices_.erase(slices_.begin(), slices_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void SendQueue::trim() {
  if (empty() && slices_.capacity() > kIdleSlices) std::vector<Slice>().swap(slices_);
}

void SendQueue::clear() {
  std::vector<Slice>().swap(slices_);
  head_ = 0;
  inFlight_ = 0;
  queuedBytes_ = 0;
}

}  // namespace iocpnet
