#include "brainstem/url.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>

namespace brainstem::client {
namespace {

constexpr std::string_view kShmScheme = "shm://";
constexpr std::string_view kShmNamedScheme = "shm+named://";
constexpr std::string_view kHttpScheme = "http://";

template <typename T>
bool ParseUnsigned(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

Status ApplyQuery(std::string_view query, ShmRegionRequest* region) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgumentError("url: query parameter '" + std::string(pair) +
                                  "' has no value (expected key=value)");
    }
    std::string_view key = pair.substr(0, eq);
    std::string_view value = pair.substr(eq + 1);
    bool ok = true;
    if (key == "slots") {
      ok = ParseUnsigned(value, &region->tensor_slots) && region->tensor_slots >= 1 &&
           region->tensor_slots <= shm::kMaxTensorSlots;
    } else if (key == "rows") {
      ok = ParseUnsigned(value, &region->max_rows) && region->max_rows >= 1 &&
           region->max_rows <= shm::kMaxRowsPerSlot;
    } else if (key == "frames") {
      ok = ParseUnsigned(value, &region->frame_slots) && region->frame_slots <= shm::kMaxFrameSlots;
    } else if (key == "frame_bytes") {
      ok = ParseUnsigned(value, &region->frame_bytes) && region->frame_bytes <= shm::kMaxFrameBytes;
    } else if (key == "spin_us") {
      ok = ParseUnsigned(value, &region->spin_us) && region->spin_us <= 1'000'000;
    } else if (key == "checksum") {
      auto kind = ParseChecksumKind(value);
      if (!kind.ok()) return kind.status();
      region->checksum = *kind;
    } else {
      return InvalidArgumentError("url: unknown query parameter '" + std::string(key) +
                                  "' (known: slots, rows, frames, frame_bytes, checksum, spin_us)");
    }
    if (!ok) {
      return InvalidArgumentError("url: query parameter " + std::string(key) + "=" +
                                  std::string(value) + " is not a number in range");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string DefaultSocketPath(std::string_view name) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string path;
  if (runtime != nullptr && runtime[0] != '\0') {
    path = std::string(runtime) + "/brainstem/";
  } else {
    path = "/tmp/brainstem-" + std::to_string(::getuid()) + "/";
  }
  path.append(name);
  path.append(".sock");
  return path;
}

Result<uint32_t> ParseChecksumKind(std::string_view text) {
  auto value = [](shm::ChecksumKind kind) { return static_cast<uint32_t>(kind); };
  if (text == "none" || text == "0") return value(shm::ChecksumKind::kNone);
  if (text == "xxh3" || text == "1") return value(shm::ChecksumKind::kXxh3);
  if (text == "crc32c" || text == "2") return value(shm::ChecksumKind::kCrc32c);
  if (text == "sha256" || text == "3") return value(shm::ChecksumKind::kSha256);
  if (text == "default") return shm::kChecksumServerDefault;
  return InvalidArgumentError(
      "url: checksum must be one of default, none, xxh3, crc32c, "
      "sha256 (got '" +
      std::string(text) + "')");
}

Result<Endpoint> ParseUrl(std::string_view url) {
  Endpoint endpoint;
  const bool named = url.starts_with(kShmNamedScheme);
  if (named || url.starts_with(kShmScheme)) {
    endpoint.kind = Endpoint::Kind::kShm;
    std::string_view rest = url.substr(named ? kShmNamedScheme.size() : kShmScheme.size());
    size_t q = rest.find('?');
    if (q != std::string_view::npos) {
      RETURN_IF_ERROR(ApplyQuery(rest.substr(q + 1), &endpoint.region));
      rest = rest.substr(0, q);
    }
    if (rest.empty()) {
      return InvalidArgumentError(
          "url: shm:// needs a name (shm://default) or an absolute "
          "socket path (shm:///run/x.sock)");
    }
    if (rest.front() == '/') {
      if (named) {
        return InvalidArgumentError(
            "url: shm+named:// takes the server's shm.name (shm+named://default), not a path");
      }
      endpoint.socket_path = std::string(rest);
      endpoint.rendezvous = Endpoint::Rendezvous::kSocket;
    } else {
      for (char c : rest) {
        bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.';
        if (!allowed || rest == "." || rest == "..") {
          return InvalidArgumentError("url: shm name '" + std::string(rest) +
                                      "' may hold only letters, digits, '-', '_' and '.'");
        }
      }
      endpoint.shm_name = std::string(rest);
      if (named) {
        endpoint.rendezvous = Endpoint::Rendezvous::kNamed;
      } else {
        endpoint.socket_path = DefaultSocketPath(rest);
        endpoint.rendezvous = Endpoint::Rendezvous::kSocketThenNamed;
      }
    }
    return endpoint;
  }
  if (url.starts_with(kHttpScheme)) {
    endpoint.kind = Endpoint::Kind::kHttp;
    std::string_view rest = url.substr(kHttpScheme.size());
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
      if (rest.substr(slash) != "/") {
        return InvalidArgumentError("url: http URLs take no path (got '" + std::string(url) + "')");
      }
      rest = rest.substr(0, slash);
    }
    std::string_view host = rest;
    std::string_view port_text;
    if (rest.starts_with('[')) {  // [::1]:8080
      size_t close = rest.find(']');
      if (close == std::string_view::npos) {
        return InvalidArgumentError("url: unterminated '[' in '" + std::string(url) + "'");
      }
      host = rest.substr(1, close - 1);
      std::string_view after = rest.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':')
          return InvalidArgumentError("url: junk after ']' in " + std::string(url));
        port_text = after.substr(1);
      }
    } else {
      size_t colon = rest.rfind(':');
      if (colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port_text = rest.substr(colon + 1);
      }
    }
    if (host.empty())
      return InvalidArgumentError("url: http URL without a host: " + std::string(url));
    endpoint.host = std::string(host);
    endpoint.port = 80;
    if (!port_text.empty() || rest.ends_with(':')) {
      uint32_t port = 0;
      if (!ParseUnsigned(port_text, &port) || port == 0 || port > 65535) {
        return InvalidArgumentError("url: port must be 1..65535 (got '" + std::string(port_text) +
                                    "')");
      }
      endpoint.port = static_cast<uint16_t>(port);
    }
    return endpoint;
  }
  return InvalidArgumentError("url: '" + std::string(url) +
                              "' must start with shm://, shm+named:// or http:// (https is not "
                              "supported)");
}

}  // namespace brainstem::client
