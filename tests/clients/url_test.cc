#include "brainstem/url.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

namespace brainstem::client {
namespace {

TEST(ParseUrl, ShmNameUsesXdgRuntimeDir) {
  ::setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
  auto e = ParseUrl("shm://default");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->kind, Endpoint::Kind::kShm);
  EXPECT_EQ(e->socket_path, "/run/user/42/brainstem/default.sock");
}

TEST(ParseUrl, ShmNameFallsBackToTmpPerUid) {
  ::unsetenv("XDG_RUNTIME_DIR");
  auto e = ParseUrl("shm://car-1");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->socket_path, "/tmp/brainstem-" + std::to_string(::getuid()) + "/car-1.sock");
  ::setenv("XDG_RUNTIME_DIR", "", 1);
  EXPECT_EQ(ParseUrl("shm://car-1")->socket_path, e->socket_path);
}

TEST(ParseUrl, ShmAbsolutePath) {
  auto e = ParseUrl("shm:///tmp/x/s.sock");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->socket_path, "/tmp/x/s.sock");
  EXPECT_EQ(e->region.checksum, shm::kChecksumServerDefault);  // the server decides
}

TEST(ParseUrl, ShmRendezvousModes) {
  ::unsetenv("XDG_RUNTIME_DIR");
  // By name: the socket, then the lobby of the same name.
  auto by_name = ParseUrl("shm://car-1");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->rendezvous, Endpoint::Rendezvous::kSocketThenNamed);
  EXPECT_EQ(by_name->shm_name, "car-1");
  // A path never falls back.
  auto by_path = ParseUrl("shm:///tmp/x/s.sock");
  ASSERT_TRUE(by_path.ok());
  EXPECT_EQ(by_path->rendezvous, Endpoint::Rendezvous::kSocket);
  EXPECT_EQ(by_path->shm_name, "");
  // The lobby only, with the same query parameters.
  auto named = ParseUrl("shm+named://car-1?slots=2&checksum=sha256");
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->kind, Endpoint::Kind::kShm);
  EXPECT_EQ(named->rendezvous, Endpoint::Rendezvous::kNamed);
  EXPECT_EQ(named->shm_name, "car-1");
  EXPECT_EQ(named->socket_path, "");
  EXPECT_EQ(named->region.tensor_slots, 2u);
  EXPECT_EQ(named->region.checksum, static_cast<uint32_t>(shm::ChecksumKind::kSha256));
  EXPECT_FALSE(ParseUrl("shm+named:///tmp/s.sock").ok());
  EXPECT_FALSE(ParseUrl("shm+named://").ok());
  EXPECT_FALSE(ParseUrl("shm+named://a/b").ok());
  EXPECT_FALSE(ParseUrl("shm+named://x?colour=red").ok());
}

TEST(ParseUrl, ShmQueryParameters) {
  auto e = ParseUrl("shm:///tmp/s.sock?slots=4&rows=16&frames=1&frame_bytes=1024&checksum=crc32c");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->socket_path, "/tmp/s.sock");
  EXPECT_EQ(e->region.tensor_slots, 4u);
  EXPECT_EQ(e->region.max_rows, 16u);
  EXPECT_EQ(e->region.frame_slots, 1u);
  EXPECT_EQ(e->region.frame_bytes, 1024u);
  EXPECT_EQ(e->region.checksum, static_cast<uint32_t>(shm::ChecksumKind::kCrc32c));
  EXPECT_EQ(ParseUrl("shm://x?checksum=default")->region.checksum, shm::kChecksumServerDefault);
}

TEST(ParseUrl, ShmRejectsBadQueryAndNames) {
  EXPECT_FALSE(ParseUrl("shm://").ok());
  EXPECT_FALSE(ParseUrl("shm://../etc").ok());
  EXPECT_FALSE(ParseUrl("shm://a/b").ok());
  EXPECT_FALSE(ParseUrl("shm://x?slots=0").ok());
  EXPECT_FALSE(ParseUrl("shm://x?slots=100000").ok());
  EXPECT_FALSE(ParseUrl("shm://x?rows=abc").ok());
  EXPECT_FALSE(ParseUrl("shm://x?checksum=md5").ok());
  auto unknown = ParseUrl("shm://x?colour=red");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("colour"), std::string::npos);
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseUrl, Http) {
  auto e = ParseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, Endpoint::Kind::kHttp);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(ParseUrl("http://localhost/")->port, 80);
  auto v6 = ParseUrl("http://[::1]:9000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
}

TEST(ParseUrl, HttpRejects) {
  EXPECT_FALSE(ParseUrl("http://:80").ok());
  EXPECT_FALSE(ParseUrl("http://h:0").ok());
  EXPECT_FALSE(ParseUrl("http://h:70000").ok());
  EXPECT_FALSE(ParseUrl("http://h:").ok());
  EXPECT_FALSE(ParseUrl("http://h:80/predict").ok());
  EXPECT_FALSE(ParseUrl("https://h:443").ok());
  EXPECT_FALSE(ParseUrl("tcp://h:1").ok());
}

}  // namespace
}  // namespace brainstem::client
