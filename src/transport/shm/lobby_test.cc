// The named rendezvous (docs/shm-protocol.md section 8) on the server side: the lobby file, its
// locks and its claim state machine driven by hand, forged claims, and a real ShmServer that
// publishes a lobby, driven by the raw test client over real /dev/shm objects.
#include "transport/shm/lobby.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "engine/test_util/fake_backend.h"
#include "transport/shm/ofd_lock.h"
#include "transport/shm/shm_server.h"
#include "transport/shm/test_util/fake_stack.h"
#include "transport/shm/test_util/raw_client.h"
#include "transport/shm/test_util/wait_for.h"

namespace brainstem::shm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint32_t U(ClaimState s) { return static_cast<uint32_t>(s); }

// A shm.name no other test (or parallel test binary) uses.
std::string UniqueName() {
  static std::atomic<int> counter{0};
  return "lobbytest-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// Everything in /dev/shm whose name starts with "brainstem-<uid>-<name>.".
std::vector<std::string> ShmFiles(const std::string& name) {
  const std::string prefix = RegionShmNamePrefix(geteuid(), name).substr(1);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with(prefix)) files.push_back(file);
  }
  return files;
}

using ::brainstem::shm::test_util::WaitFor;

// A client's view of the lobby for driving claims by hand: its own open file description (so
// its locks are its own), the mapping, and one claim.
class Peer {
 public:
  explicit Peer(const std::string& shm_name) {
    fd_ = shm_open(shm_name.c_str(), O_RDWR | O_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << shm_name;
    base_ = mmap(nullptr, kLobbySize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  }
  ~Peer() { Leave(); }
  // Takes claim `i`'s lock and moves it FREE -> CLAIMED.
  bool Claim(uint32_t i) {
    claim_ = i;
    if (TryLockByte(fd_, ClaimLockByte(i)) != LockResult::kLocked) return false;
    uint32_t expected = U(ClaimState::kFree);
    return claim()->state.compare_exchange_strong(expected, U(ClaimState::kClaimed));
  }
  void Hello(const HelloMessage& hello) {
    claim()->hello = hello;
    claim()->state.store(U(ClaimState::kHello));
  }
  LobbyClaim* claim() const { return ClaimAt(base_, claim_); }
  uint32_t state() const { return claim()->state.load(); }
  std::string message() const {
    return std::string(claim()->welcome.message,
                       strnlen(claim()->welcome.message, sizeof(claim()->welcome.message)));
  }
  // Leaves politely, as the client library does: LEAVING, then the lock goes; the mapping stays.
  void SayGoodbye() {
    claim()->state.store(U(ClaimState::kLeaving));
    UnlockByte(fd_, ClaimLockByte(claim_));
  }
  // Dies, as far as the lobby can tell: the claim's lock goes with the descriptor.
  void Leave() {
    if (base_ != nullptr) munmap(base_, kLobbySize);
    if (fd_ >= 0) close(fd_);
    base_ = nullptr;
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  void* base_ = nullptr;
  uint32_t claim_ = 0;
};

// Admits every hello with a small named region, or refuses when `refuse` is set; counts calls.
struct FakeAdmit {
  int calls = 0;
  bool refuse = false;
  HelloMessage last{};
  Lobby::AdmitFn fn() {
    return [this](const HelloMessage& hello, const std::string& region_name) {
      ++calls;
      last = hello;
      Admission a;
      if (refuse) {
        a.status = ShmStatus::kInvalidArgument;
        a.message = "hello.max_rows: 0 is out of range";
        return a;
      }
      RegionGeometry g;
      g.input_width = 3;
      g.output_width = 2;
      g.max_rows = hello.max_rows;
      g.tensor_slot_count = hello.tensor_slot_count;
      auto region = Region::CreateNamed(region_name, g, ChecksumKind::kXxh3, 7, nullptr);
      EXPECT_TRUE(region.ok()) << region.status().ToString();
      a.region = std::move(region).value();
      return a;
    };
  }
};

TEST(LobbyLayoutTest, SizesAndNames) {
  EXPECT_EQ(offsetof(LobbyHeader, server_state), 64u);
  EXPECT_EQ(offsetof(LobbyHeader, doorbell), 128u);
  EXPECT_EQ(offsetof(LobbyClaim, state), 0u);
  EXPECT_EQ(offsetof(LobbyClaim, hello), 16u);
  EXPECT_EQ(offsetof(LobbyClaim, welcome), 56u);
  EXPECT_EQ(offsetof(LobbyClaim, region_name), 344u);
  EXPECT_EQ(ClaimLockByte(0), 4096u);
  EXPECT_EQ(ClaimLockByte(63), 4096u + 63 * 512);
  EXPECT_EQ(LobbyShmName(1000, "default"), "/brainstem-1000-default.lobby");
  EXPECT_EQ(RegionShmNamePrefix(1000, "default"), "/brainstem-1000-default.");
}

TEST(LobbyTest, FileModeOwnerAndServerLock) {
  const std::string name = UniqueName();
  const mode_t old_umask = umask(0);  // 0600 must not depend on the umask
  auto lobby = Lobby::Create(name, geteuid(), 42, 2000);
  umask(old_umask);
  ASSERT_TRUE(lobby.ok()) << lobby.status().ToString();
  const std::string path = "/dev/shm" + (*lobby)->shm_name();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kLobbySize);
  const LobbyHeader* h = (*lobby)->header();
  EXPECT_EQ(h->magic, kLobbyMagic);
  EXPECT_EQ(h->generation, 42u);
  EXPECT_EQ(h->claim_count, kLobbyClaimCount);
  EXPECT_EQ(h->server_state.load(), 1u);
  // Another open file description sees the server's lock on byte 0.
  const int probe = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(probe, 0);
  EXPECT_TRUE(ByteLockedByOther(probe, kLobbyServerLockByte));
  EXPECT_FALSE(ByteLockedByOther(probe, ClaimLockByte(0)));
  lobby->reset();
  EXPECT_FALSE(fs::exists(path)) << "the lobby outlived its server";
  EXPECT_FALSE(ByteLockedByOther(probe, kLobbyServerLockByte)) << "the lock outlived the server";
  close(probe);
}

TEST(LobbyTest, LiveLobbyIsRefusedStaleOneIsReplaced) {
  const std::string name = UniqueName();
  {
    auto first = Lobby::Create(name, geteuid(), 1, 2000);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    auto second = Lobby::Create(name, geteuid(), 2, 2000);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find("another server is using lobby"), std::string::npos)
        << second.status().message();
    EXPECT_EQ((*first)->header()->server_state.load(), 1u) << "the live lobby was disturbed";
  }
  // A dead server's lobby (no lock) and a region name it left behind; and a file that only
  // looks similar, which must stay.
  const std::string stale = LobbyShmName(geteuid(), name);
  const std::string orphan = RegionShmNamePrefix(geteuid(), name) + "abc.3.def";
  const std::string bystander = RegionShmNamePrefix(geteuid(), name) + "keep.me";
  for (const std::string& n : {stale, orphan, bystander}) {
    const int fd = shm_open(n.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0) << n;
    ASSERT_EQ(ftruncate(fd, 4096), 0);
    close(fd);
  }
  auto replaced = Lobby::Create(name, geteuid(), 3, 2000);
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ((*replaced)->header()->generation, 3u);
  EXPECT_FALSE(fs::exists("/dev/shm" + orphan));
  EXPECT_TRUE(fs::exists("/dev/shm" + bystander));
  shm_unlink(bystander.c_str());
}

TEST(LobbyTest, ClaimStateMachineFromHelloToDeparture) {
  const std::string name = UniqueName();
  auto lobby = Lobby::Create(name, geteuid(), 9, 2000);
  ASSERT_TRUE(lobby.ok());
  Lobby& l = **lobby;
  FakeAdmit admit;
  EXPECT_FALSE(l.busy());

  Peer peer(l.shm_name());
  ASSERT_TRUE(peer.Claim(5));
  Peer rival(l.shm_name());
  EXPECT_FALSE(rival.Claim(5)) << "a claim's lock keeps other clients out";
  HelloMessage hello = RawClient::MakeHello(2, 4);
  peer.Hello(hello);
  auto r = l.Scan(Clock::now(), false, admit.fn());
  EXPECT_EQ(admit.calls, 1);
  EXPECT_EQ(admit.last.tensor_slot_count, 2u);
  EXPECT_TRUE(r.attached.empty());
  ASSERT_EQ(peer.state(), U(ClaimState::kWelcome));
  EXPECT_EQ(peer.claim()->welcome.status, 0u);
  EXPECT_EQ(peer.claim()->welcome.generation, 9u);
  const std::string region_name(peer.claim()->region_name);
  EXPECT_TRUE(region_name.starts_with(RegionShmNamePrefix(geteuid(), name) + "9.5."))
      << region_name;
  EXPECT_TRUE(fs::exists("/dev/shm" + region_name));
  EXPECT_TRUE(l.busy());

  peer.claim()->state.store(U(ClaimState::kAttached));
  r = l.Scan(Clock::now(), true, admit.fn());
  ASSERT_EQ(r.attached.size(), 1u);
  EXPECT_EQ(r.attached[0].claim, 5u);
  EXPECT_EQ(r.attached[0].region->geometry().tensor_slot_count, 2u);
  EXPECT_FALSE(fs::exists("/dev/shm" + region_name)) << "an attached region keeps its name";
  // During the session the state word is the client's; scribbling on it changes nothing.
  peer.claim()->state.store(77);
  r = l.Scan(Clock::now(), true, admit.fn());
  EXPECT_TRUE(r.departed.empty());
  EXPECT_EQ(admit.calls, 1);

  peer.Leave();  // the client dies
  r = l.Scan(Clock::now(), true, admit.fn());
  ASSERT_EQ(r.departed.size(), 1u);
  EXPECT_EQ(r.departed[0], 5u);
  EXPECT_EQ(ClaimAt(l.base(), 5)->state.load(), U(ClaimState::kFree));
  EXPECT_FALSE(l.busy());
  // The freed claim is the next client's.
  Peer next(l.shm_name());
  EXPECT_TRUE(next.Claim(5));
}

// A client that leaves says so, and the server frees its claim on the ring that follows rather
// than on its next lock probe, so clients that reconnect often do not fill the lobby.
TEST(LobbyTest, LeavingClaimIsFreedWithoutWaitingForTheProbe) {
  auto lobby = Lobby::Create(UniqueName(), geteuid(), 3, 2000);
  ASSERT_TRUE(lobby.ok());
  Lobby& l = **lobby;
  FakeAdmit admit;
  Peer peer(l.shm_name());
  ASSERT_TRUE(peer.Claim(2));
  peer.Hello(RawClient::MakeHello(1, 1));
  l.Scan(Clock::now(), false, admit.fn());
  peer.claim()->state.store(U(ClaimState::kAttached));
  ASSERT_EQ(l.Scan(Clock::now(), false, admit.fn()).attached.size(), 1u);

  // LEAVING written while the lock is still held (a forged or early word) ends nothing.
  peer.claim()->state.store(U(ClaimState::kLeaving));
  EXPECT_TRUE(l.Scan(Clock::now(), false, admit.fn()).departed.empty());
  EXPECT_TRUE(l.busy());

  peer.SayGoodbye();
  auto r = l.Scan(Clock::now(), /*probe_locks=*/false, admit.fn());
  ASSERT_EQ(r.departed.size(), 1u);
  EXPECT_EQ(r.departed[0], 2u);
  EXPECT_EQ(ClaimAt(l.base(), 2)->state.load(), U(ClaimState::kFree));
  EXPECT_FALSE(l.busy());
}

TEST(LobbyTest, ForgedAndStalledClaimsAreRefusedAlone) {
  const std::string name = UniqueName();
  auto lobby = Lobby::Create(name, geteuid(), 9, /*step_timeout_ms=*/50);
  ASSERT_TRUE(lobby.ok());
  Lobby& l = **lobby;
  FakeAdmit admit;

  Peer forged_welcome(l.shm_name()), bad_state(l.shm_name()), stalled(l.shm_name()),
      never_attached(l.shm_name()), dead(l.shm_name()), good(l.shm_name());
  ASSERT_TRUE(forged_welcome.Claim(0));
  forged_welcome.claim()->state.store(U(ClaimState::kWelcome));  // the server's state
  ASSERT_TRUE(bad_state.Claim(1));
  bad_state.claim()->state.store(99);
  ASSERT_TRUE(stalled.Claim(2));  // never writes its hello
  ASSERT_TRUE(never_attached.Claim(3));
  never_attached.Hello(RawClient::MakeHello());
  ASSERT_TRUE(dead.Claim(4));
  dead.Hello(RawClient::MakeHello());
  dead.Leave();
  ASSERT_TRUE(good.Claim(6));
  good.Hello(RawClient::MakeHello());

  const TimePoint t0 = Clock::now();
  l.Scan(t0, true, admit.fn());
  EXPECT_EQ(forged_welcome.state(), U(ClaimState::kRefused));
  EXPECT_NE(forged_welcome.message().find("state 3 was not expected"), std::string::npos)
      << forged_welcome.message();
  EXPECT_EQ(bad_state.state(), U(ClaimState::kRefused));
  EXPECT_NE(bad_state.message().find("state 99"), std::string::npos) << bad_state.message();
  EXPECT_EQ(stalled.state(), U(ClaimState::kClaimed));
  EXPECT_EQ(never_attached.state(), U(ClaimState::kWelcome));
  EXPECT_EQ(ClaimAt(l.base(), 4)->state.load(), U(ClaimState::kFree)) << "a dead claim is swept";
  EXPECT_EQ(good.state(), U(ClaimState::kWelcome)) << "bad neighbours hurt a good claim";
  EXPECT_EQ(admit.calls, 2);  // never_attached and good; the dead one was swept first
  const std::string orphan(never_attached.claim()->region_name);

  good.claim()->state.store(U(ClaimState::kAttached));
  auto r = l.Scan(t0 + 100ms, false, admit.fn());
  EXPECT_EQ(r.attached.size(), 1u);
  EXPECT_EQ(stalled.state(), U(ClaimState::kRefused));
  EXPECT_NE(stalled.message().find("no hello within 50 ms"), std::string::npos)
      << stalled.message();
  EXPECT_EQ(never_attached.state(), U(ClaimState::kRefused));
  EXPECT_NE(never_attached.message().find("not attached within 50 ms"), std::string::npos)
      << never_attached.message();
  EXPECT_FALSE(fs::exists("/dev/shm" + orphan)) << "a region nobody attached keeps its name";

  // Refused clients let go; their claims come back.
  forged_welcome.Leave();
  bad_state.Leave();
  stalled.Leave();
  never_attached.Leave();
  r = l.Scan(t0 + 200ms, true, admit.fn());
  EXPECT_TRUE(r.departed.empty()) << "refused claims are not sessions";
  for (uint32_t i : {0u, 1u, 2u, 3u}) EXPECT_EQ(ClaimAt(l.base(), i)->state.load(), 0u) << i;
}

// --- a real server publishing a lobby --------------------------------------------------------

class NamedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueName();
    options_.listen_socket = false;  // shm.rendezvous=named: the lobby only
    options_.lobby_name = name_;
    options_.limits.max_tensor_slots = 16;
    options_.limits.max_rows = 64;
    options_.lobby_probe_ms = 20;
  }
  void TearDown() override {
    server_.reset();
    scheduler_.reset();
    EXPECT_TRUE(ShmFiles(name_).empty()) << "left in /dev/shm: " << ShmFiles(name_).front();
  }

  void StartServer() {
    auto io = PolicyIo::FromCard(test_util::ShmTestCard());
    ASSERT_TRUE(io.ok());
    io_ = std::make_unique<PolicyIo>(std::move(io).value());
    auto scheduler = test_util::FakeScheduler(inline_when_idle_, &metrics_, &backend_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status().ToString();
    scheduler_ = std::move(scheduler).value();
    auto server = ShmServer::Create(options_, io_.get(), scheduler_.get(), &metrics_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    server_->Start();
  }

  std::unique_ptr<RawClient> Connect(const HelloMessage& hello = RawClient::MakeHello()) {
    auto client = RawClient::ConnectNamed(server_->lobby_shm_name(), hello);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  void RoundTrip(RawClient& client, uint32_t slot) {
    const std::vector<float> raw = {45, 0.1f, 0.2f};
    client.SubmitTensor(slot, raw, 1);
    ASSERT_TRUE(client.WaitTensor(slot));
    ASSERT_EQ(client.TensorStatus(slot), ShmStatus::kOk) << client.TensorError(slot);
    // FakeBackend: sum of the preprocessed row times (column + 1), clipped.
    const float sum = (45 - 30) / 15.0f + 0.1f + 0.2f;
    EXPECT_FLOAT_EQ(client.view().tensor_output(slot)[0], std::min(sum, 1.0f));
    EXPECT_FLOAT_EQ(client.view().tensor_output(slot)[1], std::min(sum * 2, 1.0f));
    client.ReleaseTensor(slot);
  }

  std::string name_;
  bool inline_when_idle_ = true;
  ShmServerOptions options_;
  ServerMetrics metrics_;
  std::unique_ptr<PolicyIo> io_;
  FakeBackend* backend_ = nullptr;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ShmServer> server_;
};

TEST_F(NamedServerTest, HelloWelcomeRoundTripAndNothingLeftInDevShm) {
  StartServer();
  EXPECT_EQ(server_->socket_path(), "");
  EXPECT_EQ(server_->lobby_shm_name(), LobbyShmName(geteuid(), name_));
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted()) << (client ? client->welcome_message() : "");
  EXPECT_EQ(client->header()->generation, server_->generation());
  EXPECT_TRUE(WaitFor([&] { return metrics_.shm_named_sessions.load() == 1; }));
  EXPECT_EQ(metrics_.shm_sessions.load(), 1);
  // Only the lobby itself is in /dev/shm: the region's name went once it was attached.
  EXPECT_TRUE(WaitFor([&] { return ShmFiles(name_).size() == 1; }));
  EXPECT_EQ(ShmFiles(name_).front(), LobbyShmName(geteuid(), name_).substr(1));
  for (uint32_t i = 0; i < 50; ++i) RoundTrip(*client, i % 4);
  const std::string text = metrics_.RenderPrometheus("m", "v");
  EXPECT_NE(text.find("brainstem_shm_named_sessions 1"), std::string::npos);
  EXPECT_NE(text.find("brainstem_shm_named_sessions_total 1"), std::string::npos);
}

TEST_F(NamedServerTest, BadHelloIsRefusedWithTheFieldNamed) {
  StartServer();
  auto refused = Connect(RawClient::MakeHello(/*tensor_slots=*/17));
  ASSERT_NE(refused, nullptr);
  EXPECT_FALSE(refused->accepted());
  EXPECT_EQ(refused->welcome().status, static_cast<uint32_t>(ShmStatus::kInvalidArgument));
  EXPECT_NE(refused->welcome_message().find("hello.tensor_slot_count: 17 is over the limit"),
            std::string::npos)
      << refused->welcome_message();
  HelloMessage abi = RawClient::MakeHello();
  abi.abi_version = 99;
  auto other_abi = Connect(abi);
  ASSERT_NE(other_abi, nullptr);
  EXPECT_EQ(other_abi->welcome().status, static_cast<uint32_t>(ShmStatus::kUnsupported));
  refused.reset();  // lets go of the claims
  other_abi.reset();
  auto good = Connect();
  ASSERT_TRUE(good && good->accepted());
  RoundTrip(*good, 0);
  EXPECT_EQ(metrics_.shm_sessions_total.load(), 1u);
}

TEST_F(NamedServerTest, ClientDeathFreesItsClaimAndRegionOthersKeepGoing) {
  inline_when_idle_ = false;  // the request waits in the scheduler while its client dies
  StartServer();
  auto survivor = Connect();
  auto doomed = Connect();
  ASSERT_TRUE(survivor && survivor->accepted() && doomed && doomed->accepted());
  ASSERT_TRUE(WaitFor([&] { return metrics_.shm_named_sessions.load() == 2; }));
  backend_->hold->store(true);
  doomed->SubmitTensor(0, std::vector<float>{30, 1, 2}, 1);
  TensorSlot* slot = doomed->view().tensor_slot(0);
  ASSERT_TRUE(
      WaitFor([&] { return slot->state.load() == static_cast<uint32_t>(SlotState::kProcessing); }));
  const int claim = doomed->claim();
  doomed->CloseSocket();  // its lock goes: the server's probe notices within a period
  ASSERT_TRUE(WaitFor([&] { return metrics_.shm_client_deaths_total.load() == 1; }));
  EXPECT_EQ(metrics_.shm_named_sessions.load(), 1);
  backend_->hold->store(false);
  EXPECT_TRUE(WaitFor([&] {
    return slot->state.load() == static_cast<uint32_t>(SlotState::kDone);
  })) << "the completion still wrote into the dead client's region";
  doomed.reset();
  RoundTrip(*survivor, 1);
  // The claim is free again and the next client may get it.
  const int fd = shm_open(server_->lobby_shm_name().c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(ByteLockedByOther(fd, ClaimLockByte(static_cast<uint32_t>(claim))));
  close(fd);
  survivor.reset();
  EXPECT_TRUE(WaitFor([&] { return metrics_.shm_bytes_mapped.load() == 0; }));
}

TEST_F(NamedServerTest, SleepingServerIsWokenThroughTheLobbyDoorbell) {
  options_.spin_us = 0;
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  for (uint32_t i = 0; i < 30; ++i) {
    ASSERT_TRUE(WaitFor([&] { return client->header()->server_sleeping.load() == 1; }));
    RoundTrip(*client, i % 4);
  }
}

TEST_F(NamedServerTest, StopClosesTheLobbyAndMarksRegionsClosing) {
  options_.listen_socket = true;  // shm.rendezvous=both
  options_.socket_path = "/tmp/" + name_ + ".sock";
  options_.own_directory = false;
  StartServer();
  auto named = Connect();
  auto socket = RawClient::Connect(options_.socket_path, RawClient::MakeHello());
  ASSERT_TRUE(named && named->accepted() && socket.ok() && (*socket)->accepted());
  RoundTrip(*named, 0);
  RoundTrip(**socket, 0);
  const std::string lobby_path = "/dev/shm" + server_->lobby_shm_name();
  server_->Stop();
  EXPECT_EQ(named->header()->server_state.load(), 2u);
  EXPECT_FALSE(fs::exists(lobby_path));
  EXPECT_FALSE(fs::exists(options_.socket_path));
  // A second server of the same name starts at once (the old lobby went with the old server).
  auto again = ShmServer::Create(options_, io_.get(), scheduler_.get(), &metrics_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE((*again)->generation(), server_->generation());
}

}  // namespace
}  // namespace brainstem::shm
