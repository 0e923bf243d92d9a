#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace loadgen {

// A log-linear histogram of non-negative integers (nanoseconds here), in the
// manner of HdrHistogram: values below 128 are exact, above that every power
// of two is split into 128 buckets, so a reported value is within 0.8% of
// the true one. Recording is a few instructions and never allocates, which
// keeps it cheap enough for every packet. Owned by one thread; merged after.
class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets * kSubBuckets, 0) {}

  void record(int64_t value) {
    const uint64_t v = value < 0 ? 0 : static_cast<uint64_t>(value);
    ++counts_[indexOf(v)];
    ++total_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return total_ ? max_ : 0; }
  uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }

  // The smallest recorded value v such that a fraction q of the samples is
  // at most v (bucket midpoint, clamped to the observed range).
  uint64_t percentile(double q) const {
    if (total_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    uint64_t target = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.5);
    if (target < 1) target = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= target) return std::clamp(midpointOf(i), min_, max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr size_t kSubBuckets = size_t{1} << kSubBits;
  // Bucket 0 holds [0, 128); bucket b >= 1 holds [2^(b+6), 2^(b+7)).
  static constexpr size_t kBuckets = 64 - kSubBits + 1;

  static size_t indexOf(uint64_t v) {
    if (v < kSubBuckets) return static_cast<size_t>(v);
    const int top = 63 - __builtin_clzll(v);  // top >= kSubBits
    const int shift = top - kSubBits;
    const size_t bucket = static_cast<size_t>(shift + 1);
    const size_t sub = static_cast<size_t>((v >> shift) - kSubBuckets);
    return bucket * kSubBuckets + sub;
  }

  static uint64_t midpointOf(size_t index) {
    const size_t bucket = index / kSubBuckets;
    const uint64_t sub = index % kSubBuckets;
    if (bucket == 0) return sub;
    const int shift = static_cast<int>(bucket) - 1;
    const uint64_t low = (kSubBuckets + sub) << shift;
    return low + ((uint64_t{1} << shift) >> 1);
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  double sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace loadgen
