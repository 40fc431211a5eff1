// Tests only: polls a condition until it holds or a timeout passes, for tests that watch
// another thread or process (a server's shm thread, a client's death) change shared state.
#pragma once

#include <chrono>
#include <thread>

namespace brainstem::shm::test_util {

// True as soon as `pred()` is; false when `timeout` passes first. Polls every 200 µs.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace brainstem::shm::test_util
