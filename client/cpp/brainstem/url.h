// Parsing of the client's connection URLs (shm://name, shm+named://name, shm:///path.sock,
// http://host:port) and
// of the shm region options carried in the query string. Pure functions, no I/O except reading
// the environment for the default socket directory.
// Thread-safe: free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "transport/shm/shm_layout.h"

namespace brainstem::client {

// What a shm client asks the server for in its hello.
struct ShmRegionRequest {
  uint32_t tensor_slots = 8;
  uint32_t max_rows = 64;
  uint32_t frame_slots = 2;
  uint64_t frame_bytes = 8ull << 20;  // one 1920x1080 BGRA frame is 7.9 MiB
  // A shm::ChecksumKind value, or shm::kChecksumServerDefault: the server's shm.checksum.
  uint32_t checksum = shm::kChecksumServerDefault;
  // Client-side only (not sent in the hello): how long a waiting caller busy-polls its slot
  // before it yields the CPU, then sleeps. Short when clients share cores with each other or
  // the server; longer when each has a core of its own.
  uint32_t spin_us = 20;
};

struct Endpoint {
  enum class Kind { kShm, kHttp };
  // How a shm client finds the server (docs/shm-protocol.md sections 1 and 8).
  enum class Rendezvous {
    kSocket,           // shm:///abs.sock: that socket, never anything else
    kSocketThenNamed,  // shm://name: the socket, else the lobby when the socket file is
                       // missing or refuses the connection
    kNamed,            // shm+named://name: the /dev/shm lobby only
  };
  Kind kind = Kind::kShm;
  Rendezvous rendezvous = Rendezvous::kSocket;  // kShm
  std::string shm_name;     // kShm by name: the server's shm.name (the lobby's name)
  std::string socket_path;  // kShm (empty for kNamed)
  std::string host;         // kHttp
  uint16_t port = 0;        // kHttp
  ShmRegionRequest region;  // kShm
};

// The default socket path for a shm name: $XDG_RUNTIME_DIR/brainstem/<name>.sock when that
// variable is set and non-empty, else /tmp/brainstem-<uid>/<name>.sock.
std::string DefaultSocketPath(std::string_view name);

// Errors: kInvalidArgument naming what is wrong with `url`.
Result<Endpoint> ParseUrl(std::string_view url);

// "none", "xxh3", "crc32c", "sha256" (or the numbers 0-3), or "default" (the server's choice,
// shm::kChecksumServerDefault). Errors: kInvalidArgument.
Result<uint32_t> ParseChecksumKind(std::string_view text);

}  // namespace brainstem::client
