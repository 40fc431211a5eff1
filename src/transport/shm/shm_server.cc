#include "transport/shm/shm_server.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>

#include "transport/shm/checksum.h"

namespace brainstem::shm {
namespace {

// epoll tags of the fixed descriptors; connections use their id (>= 16).
constexpr uint64_t kListenerTag = 0;
constexpr uint64_t kDoorbellTag = 1;
constexpr uint64_t kStopTag = 2;
constexpr uint64_t kTimerTag = 3;

// While spinning, sockets are still checked this often, so that connects and hang-ups are
// noticed under a steady stream of requests that never lets the thread sleep.
constexpr auto kEventCheckInterval = std::chrono::microseconds(200);

Status SysError(const std::string& what) {
  return InternalError("shm server: " + what + ": " + std::strerror(errno));
}

uint64_t NewGeneration() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof(value), 0) != static_cast<ssize_t>(sizeof(value))) {
    value = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  }
  return value == 0 ? 1 : value;  // 0 would read as "no region yet" to a client
}

bool AddToEpoll(int epoll_fd, int fd, uint32_t events, uint64_t tag) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = tag;
  return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0;
}

}  // namespace

struct ShmServer::Connection {
  uint64_t id = 0;
  int fd = -1;         // owned until the session takes it; -1 for a lobby session
  int64_t claim = -1;  // the lobby claim of a named session
  PeerCredentials peer;
  TimePoint accepted;
  HelloMessage hello{};
  size_t hello_bytes = 0;
  std::shared_ptr<Session> session;  // set once welcomed
};

Result<ShmServerOptions> ShmServerOptionsFromConfig(const Config& config,
                                                    const std::string& xdg_runtime_dir) {
  const ShmConfig& shm = config.shm;
  ShmServerOptions options;
  options.listen_socket = shm.rendezvous != "named";
  if (shm.rendezvous != "socket") options.lobby_name = shm.name;
  if (shm.path.empty()) {
    auto path = DefaultSocketPath(shm.name, xdg_runtime_dir, geteuid());
    if (!path.ok()) return InvalidArgumentError("shm.name: " + path.status().message());
    options.socket_path = *path;
    options.own_directory = true;
  } else {
    options.socket_path = shm.path;
    options.own_directory = false;
  }
  auto checksum = ParseChecksumKind(shm.checksum);
  if (!checksum.has_value()) {
    return InvalidArgumentError("shm.checksum: '" + shm.checksum +
                                "' is not allowed (allowed: none, xxh3, crc32c, sha256)");
  }
  options.limits.default_checksum = *checksum;
  options.limits.max_tensor_slots = static_cast<uint32_t>(shm.max_tensor_slots);
  options.limits.max_rows = static_cast<uint32_t>(shm.max_rows);
  options.limits.max_frame_slots = static_cast<uint32_t>(shm.max_frame_slots);
  options.limits.max_frame_bytes = static_cast<uint64_t>(shm.max_frame_bytes);
  options.spin_us = shm.spin_us;
  options.allow_other_uids = shm.allow_other_uids;
  options.request_timeout_ms = config.server.request_timeout_ms;
  return options;
}

Result<std::unique_ptr<ShmServer>> ShmServer::Create(ShmServerOptions options, const PolicyIo* io,
                                                     Scheduler* scheduler, ServerMetrics* metrics) {
  if (io->input_width() != scheduler->input_width() ||
      io->output_width() != scheduler->output_width()) {
    return InvalidArgumentError("shm server: the model card's widths disagree with the model's");
  }
  if (!options.listen_socket && options.lobby_name.empty()) {
    return InvalidArgumentError("shm server: neither a socket nor a lobby to rendezvous on");
  }
  std::unique_ptr<Listener> listener;
  if (options.listen_socket) {
    ASSIGN_OR_RETURN(listener, Listener::Create(options.socket_path, options.own_directory));
  }
  const uint64_t generation = NewGeneration();
  std::unique_ptr<Lobby> lobby;
  if (!options.lobby_name.empty()) {
    ASSIGN_OR_RETURN(
        lobby, Lobby::Create(options.lobby_name, geteuid(), generation, options.hello_timeout_ms));
  }
  const int doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (doorbell < 0) return SysError("eventfd");
  const int stop = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const int timer = lobby ? timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC) : -1;
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (stop < 0 || epoll_fd < 0 || (lobby && timer < 0) ||
      (listener && !AddToEpoll(epoll_fd, listener->fd(), EPOLLIN, kListenerTag)) ||
      (timer >= 0 && !AddToEpoll(epoll_fd, timer, EPOLLIN, kTimerTag)) ||
      !AddToEpoll(epoll_fd, doorbell, EPOLLIN, kDoorbellTag) ||
      !AddToEpoll(epoll_fd, stop, EPOLLIN, kStopTag)) {
    Status s = SysError("epoll setup");
    close(doorbell);
    if (stop >= 0) close(stop);
    if (timer >= 0) close(timer);
    if (epoll_fd >= 0) close(epoll_fd);
    return s;
  }
  return std::unique_ptr<ShmServer>(new ShmServer(std::move(options), io, scheduler, metrics,
                                                  std::move(listener), std::move(lobby), generation,
                                                  doorbell, stop, timer, epoll_fd));
}

ShmServer::ShmServer(ShmServerOptions options, const PolicyIo* io, Scheduler* scheduler,
                     ServerMetrics* metrics, std::unique_ptr<Listener> listener,
                     std::unique_ptr<Lobby> lobby, uint64_t generation, int doorbell_fd,
                     int stop_fd, int timer_fd, int epoll_fd)
    : options_(std::move(options)),
      io_(io),
      metrics_(metrics),
      socket_path_(listener ? listener->path() : std::string()),
      lobby_shm_name_(lobby ? lobby->shm_name() : std::string()),
      listener_(std::move(listener)),
      lobby_(std::move(lobby)),
      doorbell_fd_(doorbell_fd),
      stop_fd_(stop_fd),
      timer_fd_(timer_fd),
      epoll_fd_(epoll_fd),
      generation_(generation),
      handler_(io, scheduler, metrics,
               SlotHandlerOptions{options_.request_timeout_ms, options_.frame_consumer}) {}

ShmServer::~ShmServer() {
  Stop();
  close(epoll_fd_);
  if (timer_fd_ >= 0) close(timer_fd_);
  close(stop_fd_);
  close(doorbell_fd_);
}

void ShmServer::Start() {
  if (started_.exchange(true)) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "bs-shm");
    Run();
  });
  if (lobby_ != nullptr) {
    waker_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "bs-shm-waker");
      RunWaker();
    });
  }
}

void ShmServer::RunWaker() {
  // FUTEX_WAIT compares the word with the last value seen in the kernel, so a client's
  // increment at any time before the wait makes it return at once: no ring is lost. The first
  // value "seen" is the lobby's initial 0, not a load here: a client may ring before this thread
  // runs.
  std::atomic<uint32_t>& word = lobby_->doorbell();
  uint32_t seen = 0;
  while (!stopped_.load(std::memory_order_acquire)) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, seen, nullptr, nullptr, 0);
    const uint32_t now = word.load(std::memory_order_seq_cst);
    if (now == seen) continue;  // spurious wake-up or a signal
    seen = now;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = write(doorbell_fd_, &one, sizeof(one));
  }
}

void ShmServer::Stop() {
  if (stopped_.exchange(true)) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(stop_fd_, &one, sizeof(one));
  if (waker_.joinable()) {
    // stopped_ is set: one more ring makes the waker see it (its FUTEX_WAIT compares the word).
    lobby_->doorbell().fetch_add(1, std::memory_order_seq_cst);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&lobby_->doorbell()), FUTEX_WAKE, INT_MAX,
            nullptr, nullptr, 0);
    waker_.join();
  }
  if (thread_.joinable()) {
    thread_.join();
  } else {
    // Never started: nothing is connected, but keep the shutdown path in one place.
    Run();
  }
  listener_.reset();  // closes the socket and removes its file
  lobby_.reset();     // marks it closing, removes its name, releases the server's lock
}

void ShmServer::Run() {
  const auto spin = std::chrono::microseconds(options_.spin_us);
  TimePoint last_work = Clock::now();
  TimePoint last_events = last_work;
  while (!stopped_.load(std::memory_order_acquire)) {
    const int handled = PollRegions();
    const TimePoint now = Clock::now();
    if (handled > 0) last_work = now;
    if (now - last_events >= kEventCheckInterval) {
      HandleEvents(0);
      last_events = now;
    }
    if (handled > 0 || now - last_work < spin) continue;

    // Going to sleep. A client stores SUBMITTED and then reads server_sleeping; the server
    // stores server_sleeping and then re-reads the slots. All four accesses are sequentially
    // consistent, so at least one side sees the other: the client rings, or the recheck finds
    // the slot. (Seq_cst operations rather than fences: GCC's TSan does not model fences.)
    SetSleeping(1);
    if (AnySubmitted()) {
      SetSleeping(0);
      last_work = Clock::now();
      continue;
    }
    // With connections still in their handshake, wake up to expire silent ones.
    HandleEvents(pending_ > 0 ? 100 : -1);
    SetSleeping(0);
    last_work = last_events = Clock::now();
  }

  // Shutdown: answer slots nobody will process, tell every client, drop every connection.
  for (const auto& session : active_) {
    session->view().header()->server_state.store(2, std::memory_order_seq_cst);
    handler_.RefuseSubmitted(*session, ShmStatus::kUnavailable, "server is stopping");
  }
  std::vector<uint64_t> ids;
  for (const auto& [id, connection] : connections_) ids.push_back(id);
  for (uint64_t id : ids) CloseConnection(id, false);
}

bool ShmServer::AnySubmitted() const {
  constexpr uint32_t kSubmitted = static_cast<uint32_t>(SlotState::kSubmitted);
  for (const auto& session : active_) {
    const RegionView& view = session->view();
    for (uint32_t i = 0; i < view.geometry.tensor_slot_count; ++i) {
      if (view.tensor_slot(i)->state.load(std::memory_order_seq_cst) == kSubmitted) return true;
    }
    for (uint32_t i = 0; i < view.geometry.frame_slot_count; ++i) {
      if (view.frame_slot(i)->state.load(std::memory_order_seq_cst) == kSubmitted) return true;
    }
  }
  return false;
}

int ShmServer::PollRegions() {
  int handled = 0;
  // Every client's policy steps of this pass go to the scheduler together, before any frame
  // work (a checksum over 8 MB takes ~0.3 ms) delays them.
  for (const auto& session : active_) handled += handler_.PollTensors(session);
  handler_.Flush();
  for (const auto& session : active_) handled += handler_.PollFrames(session);
  return handled;
}

void ShmServer::SetSleeping(uint32_t value) {
  for (const auto& session : active_) {
    session->view().header()->server_sleeping.store(value, std::memory_order_seq_cst);
  }
}

void ShmServer::DrainFd(int fd) {
  uint64_t count;
  while (read(fd, &count, sizeof(count)) > 0) {
  }
}

void ShmServer::HandleEvents(int timeout_ms) {
  epoll_event events[64];
  const int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    const uint32_t what = events[i].events;
    if (tag == kListenerTag) {
      Accept();
      continue;
    }
    if (tag == kDoorbellTag) {
      DrainFd(doorbell_fd_);
      // A lobby client rings for a new claim step as for a slot: look at the claims (cheap
      // loads; the lock probes wait for the timer).
      if (lobby_ != nullptr) ScanLobby(false);
      continue;
    }
    if (tag == kTimerTag) {
      DrainFd(timer_fd_);
      ScanLobby(true);
      continue;
    }
    // The stop eventfd is never drained: once written it keeps every later epoll_wait from
    // blocking, so a stop noticed in a non-blocking check cannot be lost before a sleep.
    if (tag == kStopTag) continue;
    auto it = connections_.find(tag);
    if (it == connections_.end()) continue;  // closed earlier in this batch
    Connection* connection = it->second.get();
    if (connection->session == nullptr) {
      if (what & EPOLLIN) {
        ReadHello(connection);
      } else if (what & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        CloseConnection(tag, false);
      }
      continue;
    }
    // A welcomed client has nothing more to say: readable means closed (EOF) or stray bytes.
    bool gone = (what & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0;
    if (!gone && (what & EPOLLIN)) {
      char buf[256];
      for (;;) {
        const ssize_t got = recv(connection->session->socket_fd(), buf, sizeof(buf), 0);
        if (got > 0) continue;
        gone = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        break;
      }
    }
    if (gone) CloseConnection(tag, true);
  }
  if (pending_ > 0) ExpirePending();
}

void ShmServer::Accept() {
  for (;;) {
    const int fd = accept4(listener_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: accepted everything; other errors: retry on the next event
    auto connection = std::make_unique<Connection>();
    connection->id = next_id_++;
    connection->fd = fd;
    connection->accepted = Clock::now();
    auto peer = GetPeerCredentials(fd);
    if (!peer.ok() || pending_ >= options_.max_pending) {
      close(fd);
      continue;
    }
    connection->peer = *peer;
    Connection* raw = connection.get();
    connections_.emplace(raw->id, std::move(connection));
    ++pending_;
    if (!options_.allow_other_uids && raw->peer.uid != geteuid()) {
      Refuse(raw, ShmStatus::kPermissionDenied,
             "uid " + std::to_string(raw->peer.uid) + " may not use this server (it runs as uid " +
                 std::to_string(geteuid()) + "; see shm.allow_other_uids)");
      continue;
    }
    if (!AddToEpoll(epoll_fd_, fd, EPOLLIN | EPOLLRDHUP, raw->id)) CloseConnection(raw->id, false);
  }
}

void ShmServer::ReadHello(Connection* connection) {
  auto* bytes = reinterpret_cast<char*>(&connection->hello);
  while (connection->hello_bytes < sizeof(HelloMessage)) {
    const ssize_t got = recv(connection->fd, bytes + connection->hello_bytes,
                             sizeof(HelloMessage) - connection->hello_bytes, 0);
    if (got > 0) {
      connection->hello_bytes += static_cast<size_t>(got);
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    CloseConnection(connection->id, false);  // closed or failed before finishing its hello
    return;
  }
  Handshake(connection);
}

Admission ShmServer::Admit(const HelloMessage& hello, const std::string& region_name) {
  Admission admission;
  auto accepted = ValidateHello(hello, options_.limits);
  if (!accepted.ok()) {
    admission.status = ToShmStatus(accepted.status().code());
    admission.message = accepted.status().message();
    return admission;
  }
  if (active_.size() >= options_.max_sessions) {
    admission.status = ShmStatus::kUnavailable;
    admission.message = "too many shared-memory clients (" + std::to_string(options_.max_sessions) +
                        "); retry later";
    return admission;
  }
  RegionGeometry geometry = accepted->geometry;
  geometry.input_width = static_cast<uint32_t>(io_->input_width());
  geometry.output_width = static_cast<uint32_t>(io_->output_width());
  auto region =
      region_name.empty()
          ? Region::Create(geometry, accepted->checksum, generation_, metrics_)
          : Region::CreateNamed(region_name, geometry, accepted->checksum, generation_, metrics_);
  if (!region.ok()) {
    admission.status = ShmStatus::kInternal;
    admission.message = region.status().message();
    return admission;
  }
  admission.region = std::move(region).value();
  return admission;
}

void ShmServer::Handshake(Connection* connection) {
  Admission admission = Admit(connection->hello, "");
  if (admission.region == nullptr) {
    Refuse(connection, admission.status, admission.message);
    return;
  }
  const Region& region = *admission.region;
  const WelcomeMessage welcome = MakeWelcome(ShmStatus::kOk, "", region.size(), generation_);
  if (!SendWelcome(connection->fd, welcome, {region.memfd(), doorbell_fd_}).ok()) {
    CloseConnection(connection->id, false);
    return;
  }
  admission.region->CloseMemfd();  // the client holds its copy; the mapping does not need it
  --pending_;
  AddSession(connection, std::move(admission.region));
}

void ShmServer::AddSession(Connection* connection, std::unique_ptr<Region> region) {
  connection->session = std::make_shared<Session>(connection->id, connection->fd, connection->peer,
                                                  std::move(region));
  connection->fd = -1;
  active_.push_back(connection->session);
  metrics_->shm_sessions.fetch_add(1, std::memory_order_relaxed);
  metrics_->shm_sessions_total.fetch_add(1, std::memory_order_relaxed);
  if (connection->claim >= 0) {
    metrics_->shm_named_sessions.fetch_add(1, std::memory_order_relaxed);
    metrics_->shm_named_sessions_total.fetch_add(1, std::memory_order_relaxed);
  }
}

void ShmServer::ScanLobby(bool probe_locks) {
  Lobby::ScanResult result = lobby_->Scan(
      Clock::now(), probe_locks, [this](const HelloMessage& hello, const std::string& region_name) {
        return Admit(hello, region_name);
      });
  // Departures first: a claim freed here may be claimed again only in a later scan.
  for (uint32_t claim : result.departed) {
    auto it = claim_connections_.find(claim);
    if (it == claim_connections_.end()) continue;
    const uint64_t id = it->second;
    claim_connections_.erase(it);
    CloseConnection(id, /*client_died=*/true);
  }
  for (Lobby::Attached& attached : result.attached) {
    auto connection = std::make_unique<Connection>();
    connection->id = next_id_++;
    connection->claim = attached.claim;
    connection->accepted = Clock::now();
    // The lobby is 0600 and owned by this uid: whoever attached runs as this uid.
    connection->peer.uid = geteuid();
    Connection* raw = connection.get();
    connections_.emplace(raw->id, std::move(connection));
    claim_connections_[attached.claim] = raw->id;
    AddSession(raw, std::move(attached.region));
  }
  ArmProbeTimer(lobby_->busy());
}

void ShmServer::ArmProbeTimer(bool armed) {
  if (armed == timer_armed_) return;
  itimerspec spec{};
  if (armed) {
    const int64_t ns = options_.lobby_probe_ms * 1'000'000;
    spec.it_interval = {static_cast<time_t>(ns / 1'000'000'000),
                        static_cast<long>(ns % 1'000'000'000)};
    spec.it_value = spec.it_interval;
  }
  if (timerfd_settime(timer_fd_, 0, &spec, nullptr) == 0) timer_armed_ = armed;
}

void ShmServer::Refuse(Connection* connection, ShmStatus status, const std::string& message) {
  // Best effort: a client that already left does not need the reason.
  (void)SendWelcome(connection->fd, MakeWelcome(status, message, 0, generation_), {});
  CloseConnection(connection->id, false);
}

void ShmServer::CloseConnection(uint64_t id, bool client_died) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& connection = *it->second;
  if (connection.session != nullptr) {
    if (connection.session->socket_fd() >= 0) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.session->socket_fd(), nullptr);
    }
    connection.session->CloseSocket();
    active_.erase(std::find(active_.begin(), active_.end(), connection.session));
    metrics_->shm_sessions.fetch_sub(1, std::memory_order_relaxed);
    if (connection.claim >= 0) {
      metrics_->shm_named_sessions.fetch_sub(1, std::memory_order_relaxed);
      claim_connections_.erase(static_cast<uint32_t>(connection.claim));
    }
    if (client_died) metrics_->shm_client_deaths_total.fetch_add(1, std::memory_order_relaxed);
    // In-flight completions hold their own references; the region unmaps after the last one.
  } else {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.fd, nullptr);
    close(connection.fd);
    --pending_;
  }
  connections_.erase(it);
}

void ShmServer::ExpirePending() {
  const TimePoint cutoff = Clock::now() - std::chrono::milliseconds(options_.hello_timeout_ms);
  std::vector<uint64_t> expired;
  for (const auto& [id, connection] : connections_) {
    if (connection->session == nullptr && connection->accepted < cutoff) expired.push_back(id);
  }
  for (uint64_t id : expired) CloseConnection(id, false);
}

}  // namespace brainstem::shm
