// A reference-counted, immutable byte buffer holding one or more whole
// packets. One broadcast is one Chunk shared by every receiver's send queue.
// Created on the JS thread (or an IO thread for system packets), released on
// whichever IO thread drops the last reference.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace iocpnet {

class ChunkRef {
 public:
  ChunkRef() = default;
  // Allocates a chunk of size bytes and copies data into it when given.
  static ChunkRef allocate(size_t size, const uint8_t* data = nullptr) {
    void* mem = std::malloc(sizeof(Header) + size);
    if (mem == nullptr) throw std::bad_alloc();
    Header* h = new (mem) Header{};
    h->size = size;
    if (data != nullptr && size > 0) std::memcpy(h->bytes(), data, size);
    return ChunkRef(h);
  }
  ChunkRef(const ChunkRef& other) noexcept : h_(other.h_) {
    if (h_ != nullptr) h_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  ChunkRef(ChunkRef&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  ChunkRef& operator=(ChunkRef other) noexcept {
    std::swap(h_, other.h_);
    return *this;
  }
  ~ChunkRef() { reset(); }

  void reset() noexcept {
    Header* h = std::exchange(h_, nullptr);
    if (h != nullptr && h->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      h->~Header();
      std::free(h);
    }
  }
  // Counts n more references at once (one atomic operation instead of n):
  // each is then taken by one call of adoptShared(). For the receivers of
  // one broadcast on one IO thread.
  void addShared(long n) const noexcept {
    if (h_ != nullptr) h_->refs.fetch_add(n, std::memory_order_relaxed);
  }
  // One of the references addShared() counted.
  static ChunkRef adoptShared(const ChunkRef& of) noexcept { return ChunkRef(of.h_); }
  uint8_t* data() const noexcept { return h_ != nullptr ? h_->bytes() : nullptr; }
  size_t size() const noexcept { return h_ != nullptr ? h_->size : 0; }
  long useCount() const noexcept { return h_ != nullptr ? h_->refs.load() : 0; }
  explicit operator bool() const noexcept { return h_ != nullptr; }

 private:
  struct Header {
    std::atomic<long> refs{1};
    size_t size = 0;
    uint8_t* bytes() noexcept { return reinterpret_cast<uint8_t*>(this + 1); }
  };
  explicit ChunkRef(Header* h) noexcept : h_(h) {}
  Header* h_ = nullptr;
};

// A range of a chunk queued on one connection.
struct Slice {
  ChunkRef chunk;
  uint32_t offset = 0;
  uint32_t length = 0;
  const uint8_t* data() const noexcept { return chunk.data() + offset; }
};

}  // namespace iocpnet
