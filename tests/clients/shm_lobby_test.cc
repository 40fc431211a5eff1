// The client's checks of a /dev/shm lobby (docs/shm-protocol.md section 8) against a fake
// server written straight against lobby_layout.h: everything the client reads from the lobby is
// peer data, so a lobby of the wrong mode, a stale one, and a welcome naming a region the client
// must not open are refused with a precise error.
#include "brainstem/shm_lobby.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <new>
#include <thread>

#include "transport/shm/ofd_lock.h"

namespace brainstem::client {
namespace {

using shm::ClaimState;

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return "clientlobby-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// A lobby file made by hand: mode, lock and contents as a test wants them.
class FakeLobby {
 public:
  FakeLobby(const std::string& name, mode_t mode, bool hold_server_lock)
      : shm_name_(shm::LobbyShmName(geteuid(), name)) {
    fd_ = shm_open(shm_name_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(fchmod(fd_, mode), 0);
    EXPECT_EQ(ftruncate(fd_, shm::kLobbySize), 0);
    if (hold_server_lock) {
      EXPECT_EQ(shm::TryLockByte(fd_, shm::kLobbyServerLockByte), shm::LockResult::kLocked);
    }
    base_ = mmap(nullptr, shm::kLobbySize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    auto* h = new (base_) shm::LobbyHeader{};
    h->magic = shm::kLobbyMagic;
    h->abi_version = shm::kAbiVersion;
    h->claim_count = shm::kLobbyClaimCount;
    h->lobby_size = shm::kLobbySize;
    h->generation = 5;
    h->claims_offset = shm::kLobbyHeaderSize;
    h->claim_stride = shm::kLobbyClaimStride;
    h->server_state.store(1);
  }
  ~FakeLobby() {
    stop_ = true;
    if (server_.joinable()) server_.join();
    munmap(base_, shm::kLobbySize);
    close(fd_);
    shm_unlink(shm_name_.c_str());
  }

  // Answers the first hello with WELCOME after `write_name` filled region_name.
  void AnswerWith(std::function<void(char*)> write_name) {
    server_ = std::thread([this, write_name] {
      while (!stop_) {
        for (uint32_t i = 0; i < shm::kLobbyClaimCount; ++i) {
          shm::LobbyClaim* c = shm::ClaimAt(base_, i);
          if (c->state.load() != static_cast<uint32_t>(ClaimState::kHello)) continue;
          c->welcome = shm::WelcomeMessage{};
          c->welcome.magic = shm::kMagic;
          c->welcome.abi_version = shm::kAbiVersion;
          c->welcome.region_size = 1 << 20;
          c->welcome.generation = 5;
          write_name(c->region_name);
          c->state.store(static_cast<uint32_t>(ClaimState::kWelcome));
          syscall(SYS_futex, reinterpret_cast<uint32_t*>(&c->state), FUTEX_WAKE, 1, nullptr,
                  nullptr, 0);
          return;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }

 private:
  const std::string shm_name_;
  int fd_ = -1;
  void* base_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread server_;
};

shm::HelloMessage Hello() {
  shm::HelloMessage hello{};
  hello.magic = shm::kMagic;
  hello.abi_version = shm::kAbiVersion;
  hello.tensor_slot_count = 1;
  hello.max_rows = 1;
  return hello;
}

TEST(ShmLobbyClient, NoLobbyIsUnavailable) {
  auto a = ClaimThroughLobby(UniqueName(), Hello(), 1000);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(a.status().message().find("no lobby /dev/shm/brainstem-"), std::string::npos)
      << a.status().message();
}

TEST(ShmLobbyClient, LobbyOfAnotherModeIsRefused) {
  const std::string name = UniqueName();
  FakeLobby lobby(name, 0644, true);
  auto a = ClaimThroughLobby(name, Hello(), 1000);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(a.status().message().find("mode 644"), std::string::npos) << a.status().message();
}

TEST(ShmLobbyClient, StaleLobbyIsUnavailable) {
  const std::string name = UniqueName();
  FakeLobby lobby(name, 0600, /*hold_server_lock=*/false);
  auto a = ClaimThroughLobby(name, Hello(), 1000);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(a.status().message().find("no server holds"), std::string::npos)
      << a.status().message();
}

TEST(ShmLobbyClient, ForgedRegionNamesAreRefused) {
  struct Case {
    std::function<void(char*)> write;
    std::string error;
  };
  const std::vector<Case> cases = {
      {[](char* n) { std::memset(n, 'a', shm::kRegionNameCapacity); }, "not NUL-terminated"},
      {[](char* n) { std::strcpy(n, "/brainstem-other-thing.1.2.3"); }, "does not start with"},
      {[](char* n) { std::strcpy(n, "/../../etc/passwd"); }, "does not start with"},
  };
  for (const Case& c : cases) {
    const std::string name = UniqueName();
    FakeLobby lobby(name, 0600, true);
    lobby.AnswerWith(c.write);
    auto a = ClaimThroughLobby(name, Hello(), 2000);
    ASSERT_FALSE(a.ok()) << c.error;
    EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(a.status().message().find(c.error), std::string::npos) << a.status().message();
  }
  // The lobby's own name has the right prefix but not the region format.
  const std::string name = UniqueName();
  FakeLobby lobby(name, 0600, true);
  const std::string own = shm::LobbyShmName(geteuid(), name);
  lobby.AnswerWith([own](char* n) { std::strcpy(n, own.c_str()); });
  auto a = ClaimThroughLobby(name, Hello(), 2000);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("is not <prefix><generation>.<claim>.<random>"),
            std::string::npos)
      << a.status().message();
}

}  // namespace
}  // namespace brainstem::client
