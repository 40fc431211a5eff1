// Pins the ABI 1 layout: a change to any offset below breaks every client built against the
// old header, so it must come with a new kAbiVersion.
#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

#include "transport/shm/shm_layout.h"

namespace brainstem::shm {
namespace {

// Offsets both sides rely on, checked at compile time.
static_assert(sizeof(HelloMessage) == 40);
static_assert(sizeof(WelcomeMessage) == 288);
static_assert(offsetof(WelcomeMessage, message) == 32);
static_assert(offsetof(RegionHeader, frame_capacity) == 88);
static_assert(offsetof(RegionHeader, server_state) == 128);
static_assert(offsetof(RegionHeader, server_sleeping) == 192);
static_assert(offsetof(TensorSlot, state) == 0);
static_assert(offsetof(TensorSlot, client_waiting) == 4);
static_assert(offsetof(TensorSlot, sequence) == 8);
static_assert(offsetof(TensorSlot, t_submit_ns) == 40);
static_assert(offsetof(TensorSlot, response) == 64);
static_assert(sizeof(SlotResponse) == 240);
static_assert(offsetof(SlotResponse, error) == 16);
static_assert(offsetof(SlotResponse, t_received_ns) == 208);
static_assert(offsetof(SlotResponse, t_done_ns) == 232);
static_assert(kTensorInputOffset == 320);
static_assert(offsetof(FrameSlot, state) == 0);
static_assert(offsetof(FrameSlot, payload_bytes) == 40);
static_assert(offsetof(FrameSlot, request) == 64);
static_assert(offsetof(FrameSlot, response) == 128);
static_assert(offsetof(FrameSlot, result_length) == 368);
static_assert(offsetof(FrameSlot, result) == 372);
// Shared words are plain 32-bit integers to the peer (and to the futex system call).
static_assert(sizeof(std::atomic<uint32_t>) == 4 && alignof(std::atomic<uint32_t>) == 4);
static_assert(std::is_standard_layout_v<RegionHeader>);
static_assert(std::is_standard_layout_v<TensorSlot>);
static_assert(std::is_standard_layout_v<FrameSlot>);
static_assert(std::is_trivially_copyable_v<HelloMessage>);
static_assert(std::is_trivially_copyable_v<WelcomeMessage>);

RegionGeometry Geometry(uint32_t in, uint32_t out, uint32_t rows, uint32_t slots, uint32_t frames,
                        uint64_t capacity) {
  RegionGeometry g;
  g.input_width = in;
  g.output_width = out;
  g.max_rows = rows;
  g.tensor_slot_count = slots;
  g.frame_slot_count = frames;
  g.frame_capacity = capacity;
  return g;
}

TEST(ShmLayoutTest, BlocksAreCacheLineAligned) {
  EXPECT_EQ(offsetof(RegionHeader, server_state) % kAlign, 0u);
  EXPECT_EQ(offsetof(RegionHeader, server_sleeping) % kAlign, 0u);
  EXPECT_EQ(offsetof(TensorSlot, response) % kAlign, 0u);
  EXPECT_EQ(kTensorInputOffset % kAlign, 0u);
  EXPECT_EQ(kFramePixelsOffset % 4096, 0u);
  for (uint32_t in : {1u, 3u, 10u, 17u}) {
    for (uint32_t rows : {1u, 7u, 1024u}) {
      for (uint32_t frames : {0u, 1u, 3u}) {
        const RegionGeometry g = Geometry(in, 3, rows, 5, frames, 1920ull * 1080 * 4 + 5);
        EXPECT_EQ(g.tensor_output_offset() % kAlign, 0u);
        EXPECT_EQ(g.tensor_slot_stride() % kAlign, 0u);
        EXPECT_EQ(g.tensor_slots_offset(), kHeaderSize);
        EXPECT_EQ(g.frame_slots_offset() % kAlign, 0u);
        EXPECT_EQ(g.frame_slot_stride() % kAlign, 0u);
        EXPECT_EQ(g.region_size() % 4096, 0u);
      }
    }
  }
}

TEST(ShmLayoutTest, GeometryHoldsEveryBlockWithoutOverlap) {
  const RegionGeometry g = Geometry(10, 3, 1024, 64, 4, 32ull << 20);
  // Input ends before output starts; output ends before the next slot.
  EXPECT_GE(g.tensor_output_offset(), kTensorInputOffset + 1024ull * 10 * sizeof(float));
  EXPECT_GE(g.tensor_slot_stride(), g.tensor_output_offset() + 1024ull * 3 * sizeof(float));
  EXPECT_GE(g.frame_slots_offset(), g.tensor_slots_offset() + 64 * g.tensor_slot_stride());
  EXPECT_GE(g.frame_slot_stride(), kFramePixelsOffset + (32ull << 20));
  EXPECT_GE(g.region_size(), g.frame_slots_offset() + 4 * g.frame_slot_stride());
  // The numbers the default config produces (10 inputs, 3 actions), for the docs.
  EXPECT_EQ(g.tensor_output_offset(), 41280u);
  EXPECT_EQ(g.tensor_slot_stride(), 53568u);
  EXPECT_EQ(g.frame_slots_offset(), 3432448u);
  EXPECT_EQ(g.region_size(), 137666560u);
}

TEST(ShmLayoutTest, LargestRegionFitsInSixtyFourBits) {
  // The server's ceilings multiplied out must not overflow the u64 arithmetic.
  const RegionGeometry g = Geometry(1u << 16, 1u << 16, kMaxRowsPerSlot, kMaxTensorSlots,
                                    kMaxFrameSlots, kMaxFrameBytes);
  EXPECT_GT(g.region_size(), g.frame_slots_offset());
  EXPECT_GT(g.frame_slots_offset(), uint64_t{kMaxTensorSlots} * kMaxRowsPerSlot * (1u << 16));
}

TEST(ShmLayoutTest, BytesPerPixel) {
  EXPECT_EQ(BytesPerPixel(PixelFormat::kBgra8), 4u);
  EXPECT_EQ(BytesPerPixel(PixelFormat::kRgba8), 4u);
  EXPECT_EQ(BytesPerPixel(PixelFormat::kRgb8), 3u);
  EXPECT_EQ(BytesPerPixel(PixelFormat::kGray8), 1u);
  EXPECT_EQ(BytesPerPixel(static_cast<PixelFormat>(99)), 0u);
}

TEST(ShmLayoutTest, MagicSpellsTheName) {
  const char expected[] = "BNRBSTM1";
  uint64_t magic = 0;
  for (int i = 7; i >= 0; --i) magic = (magic << 8) | static_cast<unsigned char>(expected[i]);
  EXPECT_EQ(magic, kMagic);
}

}  // namespace
}  // namespace brainstem::shm
