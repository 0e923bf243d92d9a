// A minimal test harness: TEST(suite, name) registers a case, CHECK* record
// failures and go on, REQUIRE* stop the case. The executable runs every case
// whose suite matches one of its arguments (all when none is given) and
// prints one summary line; its exit status is the number of failed cases
// (capped), so CTest sees a failure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace harness {

struct Case {
  const char* suite;
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

struct Registrar {
  Registrar(const char* suite, const char* name, void (*fn)()) { registry().push_back(Case{suite, name, fn}); }
};

struct State {
  const Case* current = nullptr;
  uint64_t checks = 0;
  uint64_t failedChecks = 0;
  bool caseFailed = false;
};

inline State& state() {
  static State s;
  return s;
}

// Thrown by REQUIRE to leave the case.
struct Abort {};

template <typename T>
std::string show(const T& v) {
  std::ostringstream out;
  if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
    out << static_cast<int>(v);
  } else if constexpr (std::is_enum_v<T>) {
    out << static_cast<long long>(v);
  } else {
    out << v;
  }
  return out.str();
}

inline void fail(const char* file, int line, const std::string& what) {
  State& s = state();
  ++s.failedChecks;
  // Only the first failures of a case are printed: a failing randomized
  // case could otherwise print thousands of lines.
  if (!s.caseFailed || s.failedChecks < 20) {
    std::fprintf(stderr, "%s:%d: %s.%s: %s\n", file, line, s.current->suite, s.current->name, what.c_str());
  }
  s.caseFailed = true;
}

inline bool check(bool ok, const char* file, int line, const char* expr) {
  ++state().checks;
  if (!ok) fail(file, line, std::string("CHECK(") + expr + ") failed");
  return ok;
}

template <typename A, typename B>
bool checkEq(const A& a, const B& b, const char* file, int line, const char* ea, const char* eb) {
  ++state().checks;
  if (a == b) return true;
  fail(file, line, std::string("CHECK_EQ(") + ea + ", " + eb + ") failed: " + show(a) + " != " + show(b));
  return false;
}

inline int runAll(int argc, char** argv) {
  std::vector<std::string> filters(argv + 1, argv + argc);
  int ran = 0;
  int failed = 0;
  for (const Case& c : registry()) {
    if (!filters.empty()) {
      bool match = false;
      for (const std::string& f : filters) match = match || f == c.suite;
      if (!match) continue;
    }
    State& s = state();
    s.current = &c;
    s.caseFailed = false;
    ++ran;
    try {
      c.fn();
    } catch (const Abort&) {
      s.caseFailed = true;
    } catch (const std::exception& e) {
      fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    if (s.caseFailed) {
      ++failed;
      std::fprintf(stderr, "FAILED %s.%s\n", c.suite, c.name);
    }
    std::fflush(stderr);
  }
  std::printf("%d test cases, %d passed, %d failed; %llu checks, %llu failed\n", ran, ran - failed, failed,
              static_cast<unsigned long long>(state().checks), static_cast<unsigned long long>(state().failedChecks));
  if (ran == 0) {
    std::fprintf(stderr, "no test case matches the given suites\n");
    return 1;
  }
  return failed > 100 ? 100 : failed;
}

}  // namespace harness

#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)
#define TEST(suite, name)                                                                                       \
  static void HARNESS_CAT(test_##suite##_, name)();                                                             \
  static const harness::Registrar HARNESS_CAT(registrar_##suite##_, name)(#suite, #name,                        \
                                                                          &HARNESS_CAT(test_##suite##_, name)); \
  static void HARNESS_CAT(test_##suite##_, name)()

#define CHECK(cond) harness::check(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b) harness::checkEq((a), (b), __FILE__, __LINE__, #a, #b)
#define REQUIRE(cond)                         \
  do {                                        \
    if (!CHECK(cond)) throw harness::Abort{}; \
  } while (0)
#define REQUIRE_EQ(a, b)                         \
  do {                                           \
    if (!CHECK_EQ(a, b)) throw harness::Abort{}; \
  } while (0)
#define TEST_MAIN() \
  int main(int argc, char** argv) { return harness::runAll(argc, argv); }
