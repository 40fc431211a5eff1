#include "engine/policy_io.h"

#include <gtest/gtest.h>

#include <cmath>

namespace brainstem {
namespace {

ModelCard TwoFeatureCard() {
  ModelCard card;
  InputFeature speed{"speed", 1, {}};
  speed.preprocess.mean = {30};
  speed.preprocess.std = {15};
  speed.preprocess.clip_low = -2;
  speed.preprocess.clip_high = 2;
  InputFeature sensors{"sensors", 2, {}};
  sensors.preprocess.scale = {2, 4};
  sensors.preprocess.offset = {1};
  card.inputs = {speed, sensors};
  card.actions = {{"throttle", 0, 1}, {"steer", -1, 1}};
  return card;
}

TEST(PolicyIoTest, FoldsNormalizationAndClips) {
  auto io = PolicyIo::FromCard(TwoFeatureCard());
  ASSERT_TRUE(io.ok()) << io.status().ToString();
  EXPECT_EQ(io->input_width(), 3);
  EXPECT_EQ(io->feature_offset(1), 1);
  EXPECT_FLOAT_EQ(io->Preprocess(0, 45), 1.0f);   // (45-30)/15
  EXPECT_FLOAT_EQ(io->Preprocess(0, 200), 2.0f);  // clipped
  EXPECT_FLOAT_EQ(io->Preprocess(1, 3), 7.0f);    // 3*2+1
  EXPECT_FLOAT_EQ(io->Preprocess(2, 3), 13.0f);   // 3*4+1
}

TEST(PolicyIoTest, DecodeClipsAndRefusesNonFinite) {
  auto io = PolicyIo::FromCard(TwoFeatureCard());
  ASSERT_TRUE(io.ok());
  float out[2];
  const float means[2] = {1.5f, -0.25f};
  ASSERT_TRUE(io->Decode(means, true, nullptr, out).ok());
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], -0.25f);
  const float bad[2] = {NAN, 0};
  Status s = io->Decode(bad, true, nullptr, out);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("throttle"), std::string::npos);
}

TEST(PolicyIoTest, SamplingIsReproducibleWithASeed) {
  ModelCard card = TwoFeatureCard();
  card.log_std = {-1, -1};
  auto io = PolicyIo::FromCard(card);
  ASSERT_TRUE(io.ok());
  ASSERT_TRUE(io->stochastic());
  const float means[2] = {0.5f, 0.0f};
  float a[2], b[2], c[2];
  std::mt19937_64 r1(7), r2(7), r3(8);
  ASSERT_TRUE(io->Decode(means, false, &r1, a).ok());
  ASSERT_TRUE(io->Decode(means, false, &r2, b).ok());
  ASSERT_TRUE(io->Decode(means, false, &r3, c).ok());
  EXPECT_EQ(a[0], b[0]);
  EXPECT_EQ(a[1], b[1]);
  EXPECT_TRUE(a[0] != c[0] || a[1] != c[1]);
}

TEST(PolicyIoTest, ZeroStdIsRefused) {
  ModelCard card = TwoFeatureCard();
  card.inputs[0].preprocess.std = {0};
  EXPECT_EQ(PolicyIo::FromCard(card).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace brainstem
