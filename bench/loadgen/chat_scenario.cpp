#include <cstring>
#include <deque>

#include "scenarios.h"
#include "session_scenario.h"

namespace loadgen {

namespace {

constexpr int kStampDigits = 16;
constexpr int64_t kResendDelayNs = 10'000'000;
// Bounds the catch-up burst of the fixed-rate mode after a stall.
constexpr uint64_t kMaxChatsPerTick = 20000;

// Users chat in rooms of roomUsers. Closed loop: each user sends its next
// chat when its own ROOM_CHAT_NOTIFY comes back. Fixed rate: chats are
// spaced evenly over this thread's users and stamped with their intended
// send time, so a server that falls behind shows in the latency (no
// coordinated omission). The figure is ROOM_CHAT_NOTIFY packets received by
// all users; the latency is from a chat to the sender's own notify, and the
// delivery latency from a chat to each of its notifies at every member.
class ChatScenario final : public SessionScenario {
 public:
  ChatScenario() : SessionScenario(true) {}

 protected:
  void onReady(Worker&, Conn& c, int64_t) override { toStart_.push_back(&c); }

  void onSteadyTick(Worker& w, int64_t now) override {
    if (!w.warmupStarted()) return;
    if (w.options.ratePerUser > 0) {
      paceChats(w, now);
      return;
    }
    if (!toStart_.empty()) {
      for (Conn* c : toStart_) {
        if (isReady(*c)) sendChat(w, *c, now, now);
      }
      toStart_.clear();
    }
    while (!resend_.empty() && resend_.front().at <= now) {
      Conn* c = resend_.front().conn;
      resend_.pop_front();
      if (isReady(*c)) sendChat(w, *c, now, now);
    }
  }

  void onSteadyPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) override {
    if (id == packet::kRoomChatNotify) {
      onNotify(w, c, body, length, now);
    } else if (id == packet::kRoomChatResponse) {
      if (const int result = resultOf(body, length); result != 0) {
        ++w.counters.requestErrors;
        w.counters.lastResult = result;
        // The refused chat gets no notify; without a resend the user would stall.
        if (w.options.ratePerUser <= 0) resend_.push_back({&c, now + kResendDelayNs});
      }
    }
  }

  int idleWaitMs() const override { return paced_ ? 1 : SessionScenario::idleWaitMs(); }

 private:
  struct Resend {
    Conn* conn;
    int64_t at;
  };

  void onNotify(Worker& w, Conn& c, const uint8_t* body, size_t length, int64_t now) {
    if (length < kUserIdSize + kStampDigits) {
      ++w.counters.protocolErrors;
      return;
    }
    const bool counting = w.inWindow(now);
    if (counting) ++w.counters.windowCompleted;
    const bool own = std::memcmp(body, c.userId, c.userIdLength) == 0 && body[c.userIdLength] == 0;
    int64_t stamp;
    if (!parseStamp(body + kUserIdSize, &stamp)) {
      // The server must relay the message bytes unchanged.
      ++w.counters.protocolErrors;
      if (!own) return;
    } else if (counting) {
      // Every notify: with the members spread over several servers, most arrive by way of the others.
      w.delivery.record(now - stamp);
      if (own) w.latency.record(now - stamp);
    }
    if (!own) return;
    if (w.options.ratePerUser <= 0) sendChat(w, c, now, now);
  }

  void paceChats(Worker& w, int64_t now) {
    if (!paced_) {
      paced_ = true;
      for (Conn* c : ready_) users_.push_back(c);
      if (users_.empty()) return;
      const double perSecond = w.options.ratePerUser * static_cast<double>(users_.size());
      intervalNs_ = 1e9 / perSecond;
      paceStart_ = w.warmupStart();
    }
    if (users_.empty()) return;
    uint64_t budget = kMaxChatsPerTick;
    for (;;) {
      const int64_t due = paceStart_ + static_cast<int64_t>(static_cast<double>(next_) * intervalNs_);
      if (due > now || budget-- == 0) break;
      Conn* c = users_[next_ % users_.size()];
      ++next_;
      if (isReady(*c)) sendChat(w, *c, due, now);
    }
  }

  void sendChat(Worker& w, Conn& c, int64_t stamp, int64_t now) {
    const size_t size = static_cast<size_t>(w.options.messageSize);
    // Compact request: the message bytes and their NUL (PROTOCOL.md section 3).
    uint8_t* body = w.append(c, packet::kRoomChatRequest, size + 1);
    static const char kHex[] = "0123456789abcdef";
    const uint64_t v = static_cast<uint64_t>(stamp);
    for (int i = 0; i < kStampDigits; ++i) body[i] = static_cast<uint8_t>(kHex[(v >> (60 - 4 * i)) & 0xf]);
    std::memset(body + kStampDigits, 'm', size - kStampDigits);
    body[size] = 0;
    if (w.inWindow(now)) ++w.counters.windowRequests;
  }

  static bool parseStamp(const uint8_t* p, int64_t* out) {
    uint64_t v = 0;
    for (int i = 0; i < kStampDigits; ++i) {
      const uint8_t ch = p[i];
      uint64_t d;
      if (ch >= '0' && ch <= '9') d = ch - '0';
      else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
      else return false;
      v = (v << 4) | d;
    }
    *out = static_cast<int64_t>(v);
    return true;
  }

  std::vector<Conn*> toStart_;
  std::deque<Resend> resend_;
  std::vector<Conn*> users_;
  bool paced_ = false;
  double intervalNs_ = 0;
  int64_t paceStart_ = 0;
  uint64_t next_ = 0;
};

}  // namespace

std::unique_ptr<Scenario> makeChatScenario() { return std::make_unique<ChatScenario>(); }

}  // namespace loadgen
