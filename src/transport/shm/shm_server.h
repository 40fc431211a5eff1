// ShmServer: the server side of the zero-copy shared-memory transport (docs/shm-protocol.md).
// It listens on a Unix socket, hands each accepted client a sealed memfd region sized from its
// hello plus the doorbell eventfd, and/or publishes a lobby in /dev/shm for clients that share
// only the IPC namespace (section 8; a small waker thread "bs-shm-waker" turns their futex
// doorbell into the eventfd). It runs one thread ("bs-shm") that polls every region for
// submitted slots, feeds tensor requests to the same Scheduler as HTTP and answers frames in
// place. When there is no work for shm.spin_us it marks every region "server sleeping" and
// blocks in epoll until a client rings the doorbell, a client connects or one hangs up.
// Life cycle: Create (binds the socket; cheap) -> Start (thread) -> Stop (every region gets
// server_state = 2, every session socket closes, the socket file is removed).
// Thread-safety: Start and Stop are called by one controlling thread (Stop also from the
// destructor); the accessors from any thread. Sessions belong to the shm thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "engine/policy_io.h"
#include "engine/scheduler.h"
#include "telemetry/server_metrics.h"
#include "transport/shm/lobby.h"
#include "transport/shm/rendezvous.h"
#include "transport/shm/session.h"
#include "transport/shm/slot_handler.h"
#include "transport/shm/validation.h"

namespace brainstem::shm {

struct ShmServerOptions {
  bool listen_socket = true;  // shm.rendezvous socket or both
  std::string socket_path;    // resolved; see ShmServerOptionsFromConfig
  bool own_directory = true;  // the socket's directory is brainstem's (enforce owner, 0700)
  ServerLimits limits;        // per-region ceilings and the default checksum
  int64_t spin_us = 50;       // keep polling this long after the last work before sleeping
  bool allow_other_uids = false;
  int64_t request_timeout_ms = 0;           // deadline of each tensor request; 0 = none
  FrameConsumer* frame_consumer = nullptr;  // frame requests other than 0 (OCR); borrowed
  uint32_t max_sessions = 256;              // connected clients; beyond: refused with UNAVAILABLE
  uint32_t max_pending = 64;                // connections that have not sent their hello yet
  int64_t hello_timeout_ms = 2000;  // a connection that sends no hello by then is closed; also
                                    // the bound on each client step of a lobby handshake
  std::string lobby_name;           // shm.name when shm.rendezvous is named or both, else ""
  int64_t lobby_probe_ms = 100;     // period of the lobby's lock probes while claims are in use
};

// Options from the shm.* and server.request_timeout_ms keys; the socket path is shm.path or
// DefaultSocketPath(shm.name, $XDG_RUNTIME_DIR, getuid()); shm.rendezvous decides between the
// socket and the lobby. Errors: kInvalidArgument naming the key (unknown checksum, path too
// long).
Result<ShmServerOptions> ShmServerOptionsFromConfig(const Config& config,
                                                    const std::string& xdg_runtime_dir);

class ShmServer {
 public:
  // Binds the socket (see Listener::Create for the errors), publishes the lobby when
  // options.lobby_name is set (see Lobby::Create) and creates the doorbell. Regions
  // are sized with io->input_width()/output_width(). All pointers are borrowed: `scheduler`
  // must outlive the server; `io` and `metrics` must outlive the scheduler (completions of
  // shm requests may still run while the scheduler drains).
  static Result<std::unique_ptr<ShmServer>> Create(ShmServerOptions options, const PolicyIo* io,
                                                   Scheduler* scheduler, ServerMetrics* metrics);
  ~ShmServer();  // Stop()

  ShmServer(const ShmServer&) = delete;
  ShmServer& operator=(const ShmServer&) = delete;

  // Starts the shm thread. REQUIRES: called at most once.
  void Start();
  // Stops accepting, marks every region closing (server_state = 2), closes every session, joins
  // the threads and removes the socket file and the lobby (whose lock then goes). Requests still in
  // the scheduler complete into their regions, which are unmapped when the last completion drops
  // its reference. Idempotent.
  void Stop();

  // "" when the socket is off (shm.rendezvous=named).
  const std::string& socket_path() const { return socket_path_; }
  // The lobby's shm_open name ("/brainstem-<uid>-<name>.lobby"), "" when there is none.
  const std::string& lobby_shm_name() const { return lobby_shm_name_; }
  // Random per server process (non-zero); a client that sees a new value reconnects.
  uint64_t generation() const { return generation_; }

 private:
  struct Connection;

  ShmServer(ShmServerOptions options, const PolicyIo* io, Scheduler* scheduler,
            ServerMetrics* metrics, std::unique_ptr<Listener> listener,
            std::unique_ptr<Lobby> lobby, uint64_t generation, int doorbell_fd, int stop_fd,
            int timer_fd, int epoll_fd);

  void Run();
  // Waits for events (timeout_ms: -1 forever, 0 poll) and handles them.
  void HandleEvents(int timeout_ms);
  void Accept();
  void ReadHello(Connection* connection);
  // Validates the hello, creates the region and sends the welcome; refusals are answered too.
  void Handshake(Connection* connection);
  // The checks and region creation both rendezvous share: ValidateHello, the session limit,
  // then a memfd region (`region_name` empty) or a named one.
  Admission Admit(const HelloMessage& hello, const std::string& region_name);
  // Registers a welcomed session (socket or lobby) and starts polling its region.
  void AddSession(Connection* connection, std::unique_ptr<Region> region);
  // Runs the lobby's claim state machine; `probe_locks` on the timer (client liveness).
  void ScanLobby(bool probe_locks);
  void ArmProbeTimer(bool armed);
  // The waker thread: FUTEX_WAIT on the lobby's doorbell word, write the doorbell eventfd.
  void RunWaker();
  void Refuse(Connection* connection, ShmStatus status, const std::string& message);
  void CloseConnection(uint64_t id, bool client_died);
  void ExpirePending();
  void SetSleeping(uint32_t value);
  int PollRegions();
  // Whether any slot is SUBMITTED, read with sequentially consistent loads (the re-check after
  // setting server_sleeping).
  bool AnySubmitted() const;
  void DrainFd(int fd);

  // Constant after construction.
  const ShmServerOptions options_;
  const PolicyIo* const io_;
  ServerMetrics* const metrics_;
  const std::string socket_path_;
  const std::string lobby_shm_name_;
  std::unique_ptr<Listener> listener_;  // reset by Stop, after the thread is gone; may be null
  std::unique_ptr<Lobby> lobby_;        // reset by Stop, after both threads are gone; may be null
  const int doorbell_fd_;               // eventfd rung by clients; shared with every client
  const int stop_fd_;                   // eventfd written by Stop
  const int timer_fd_;                  // lobby lock probes; -1 without a lobby
  const int epoll_fd_;
  const uint64_t generation_;
  SlotHandler handler_;

  std::thread thread_;
  std::thread waker_;  // only with a lobby
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};

  // Owned by the shm thread.
  uint64_t next_id_ = 16;  // epoll tags below 16 name the fixed descriptors
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Session>> active_;  // sessions whose regions are polled
  uint32_t pending_ = 0;
  std::map<uint32_t, uint64_t> claim_connections_;  // lobby claim -> connection id
  bool timer_armed_ = false;
};

}  // namespace brainstem::shm
