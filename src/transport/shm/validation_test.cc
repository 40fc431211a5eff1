#include "transport/shm/validation.h"

#include <gtest/gtest.h>

#include <string>

namespace brainstem::shm {
namespace {

HelloMessage GoodHello() {
  HelloMessage h{};
  h.magic = kMagic;
  h.abi_version = kAbiVersion;
  h.tensor_slot_count = 8;
  h.max_rows = 32;
  h.frame_slot_count = 1;
  h.frame_capacity = 1 << 20;
  h.checksum_kind = kChecksumServerDefault;
  return h;
}

void ExpectRefused(const HelloMessage& hello, StatusCode code, const std::string& needle) {
  auto result = ValidateHello(hello, ServerLimits{});
  ASSERT_FALSE(result.ok()) << "accepted; expected a refusal naming " << needle;
  EXPECT_EQ(result.status().code(), code);
  EXPECT_NE(result.status().message().find(needle), std::string::npos) << result.status().message();
}

TEST(ShmValidationTest, AcceptsAGoodHello) {
  ServerLimits limits;
  limits.default_checksum = ChecksumKind::kCrc32c;
  auto accepted = ValidateHello(GoodHello(), limits);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->checksum, ChecksumKind::kCrc32c);  // the server's default was asked for
  EXPECT_EQ(accepted->geometry.tensor_slot_count, 8u);
  EXPECT_EQ(accepted->geometry.max_rows, 32u);
  EXPECT_EQ(accepted->geometry.frame_capacity, 1u << 20);

  HelloMessage explicit_kind = GoodHello();
  explicit_kind.checksum_kind = static_cast<uint32_t>(ChecksumKind::kSha256);
  EXPECT_EQ(ValidateHello(explicit_kind, limits)->checksum, ChecksumKind::kSha256);

  HelloMessage no_frames = GoodHello();
  no_frames.frame_slot_count = 0;
  no_frames.frame_capacity = ~0ull;  // ignored without frame slots
  auto tensors_only = ValidateHello(no_frames, limits);
  ASSERT_TRUE(tensors_only.ok());
  EXPECT_EQ(tensors_only->geometry.frame_capacity, 0u);
}

TEST(ShmValidationTest, RefusesEveryBadHelloField) {
  HelloMessage h = GoodHello();
  h.magic = 0x1234;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.magic");
  h = GoodHello();
  h.abi_version = 2;
  ExpectRefused(h, StatusCode::kUnimplemented, "hello.abi_version: 2");
  h = GoodHello();
  h.tensor_slot_count = 65;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.tensor_slot_count: 65");
  h.tensor_slot_count = 0xFFFFFFFF;
  ExpectRefused(h, StatusCode::kInvalidArgument, "allowed: 0..64");
  h = GoodHello();
  h.max_rows = 0;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.max_rows: 0");
  h.max_rows = 1025;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.max_rows: 1025");
  h = GoodHello();
  h.frame_slot_count = 5;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.frame_slot_count: 5");
  h = GoodHello();
  h.frame_capacity = 0;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.frame_capacity: 0");
  h.frame_capacity = (32ull << 20) + 1;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.frame_capacity");
  h = GoodHello();
  h.checksum_kind = 4;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.checksum_kind: 4");
  h = GoodHello();
  h.reserved = 1;
  ExpectRefused(h, StatusCode::kInvalidArgument, "hello.reserved");
  h = GoodHello();
  h.tensor_slot_count = 0;
  h.frame_slot_count = 0;
  ExpectRefused(h, StatusCode::kInvalidArgument, "at least one slot");
}

RegionGeometry Geometry() {
  RegionGeometry g;
  g.input_width = 3;
  g.output_width = 2;
  g.max_rows = 16;
  g.tensor_slot_count = 2;
  g.frame_slot_count = 1;
  g.frame_capacity = 4096;
  return g;
}

TEST(ShmValidationTest, TensorRequests) {
  TensorRequest r;
  r.rows = 16;
  EXPECT_TRUE(ValidateTensorRequest(r, Geometry(), false).ok());
  r.rows = 0;
  EXPECT_NE(ValidateTensorRequest(r, Geometry(), false).message().find("rows: 0"),
            std::string::npos);
  r.rows = 17;
  EXPECT_NE(ValidateTensorRequest(r, Geometry(), false).message().find("allowed: 1..16"),
            std::string::npos);
  r.rows = 0xFFFFFFFF;
  EXPECT_EQ(ValidateTensorRequest(r, Geometry(), false).code(), StatusCode::kInvalidArgument);
  r.rows = 1;
  r.flags = 0x6;
  EXPECT_NE(ValidateTensorRequest(r, Geometry(), true).message().find("flags: unknown bits"),
            std::string::npos);
  r.flags = kFlagStochastic;
  EXPECT_TRUE(ValidateTensorRequest(r, Geometry(), true).ok());
  EXPECT_NE(ValidateTensorRequest(r, Geometry(), false).message().find("log_std"),
            std::string::npos);
}

FrameRequest GoodFrame() {
  FrameRequest f;
  f.width = 10;
  f.height = 20;
  f.stride = 44;  // 40 bytes of BGRA plus padding
  f.format = static_cast<uint32_t>(PixelFormat::kBgra8);
  f.payload_bytes = 44 * 20;
  return f;
}

void ExpectFrameError(const FrameRequest& f, StatusCode code, const std::string& needle) {
  Status s = ValidateFrameRequest(f, Geometry());
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

TEST(ShmValidationTest, FrameRequests) {
  EXPECT_TRUE(ValidateFrameRequest(GoodFrame(), Geometry()).ok());
  FrameRequest f = GoodFrame();
  f.width = 0;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "width: 0");
  f = GoodFrame();
  f.height = kMaxFrameDimension + 1;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "height: 16385");
  f = GoodFrame();
  f.format = 7;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "format: 7");
  f = GoodFrame();
  f.stride = 39;
  f.payload_bytes = 39 * 20;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "stride: 39");
  f = GoodFrame();
  f.payload_bytes += 1;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "payload_bytes: 881 is not stride x height");
  f = GoodFrame();
  f.height = 200;  // consistent, but larger than the slot
  f.payload_bytes = 44 * 200;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "exceeds the frame capacity (4096)");
  f = GoodFrame();
  f.stride = 0xFFFFFFFF;  // the product must not wrap around
  f.height = kMaxFrameDimension;
  f.payload_bytes = uint64_t{0xFFFFFFFF} * kMaxFrameDimension;
  ExpectFrameError(f, StatusCode::kInvalidArgument, "exceeds the frame capacity");
  f = GoodFrame();
  f.request = 3;
  ExpectFrameError(f, StatusCode::kUnimplemented, "request: 3");
}

TEST(ShmValidationTest, StatusMapping) {
  EXPECT_EQ(ToShmStatus(StatusCode::kOk), ShmStatus::kOk);
  EXPECT_EQ(ToShmStatus(StatusCode::kInvalidArgument), ShmStatus::kInvalidArgument);
  EXPECT_EQ(ToShmStatus(StatusCode::kUnavailable), ShmStatus::kUnavailable);
  EXPECT_EQ(ToShmStatus(StatusCode::kDeadlineExceeded), ShmStatus::kDeadlineExceeded);
  EXPECT_EQ(ToShmStatus(StatusCode::kDataLoss), ShmStatus::kChecksumMismatch);
  EXPECT_EQ(ToShmStatus(StatusCode::kUnimplemented), ShmStatus::kUnsupported);
  EXPECT_EQ(ToShmStatus(StatusCode::kInternal), ShmStatus::kInternal);
}

TEST(ShmValidationTest, ReadOnceCopiesTheValue) {
  TensorSlot slot{};
  slot.rows = 5;
  slot.sequence = 9;
  const TensorRequest r = ReadTensorRequest(slot);
  slot.rows = 5000;  // a later write by the peer does not change the snapshot
  EXPECT_EQ(r.rows, 5u);
  EXPECT_EQ(r.sequence, 9u);
}

}  // namespace
}  // namespace brainstem::shm
