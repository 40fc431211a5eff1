#include "transport/http/predict_request.h"

#include <gtest/gtest.h>

namespace brainstem {
namespace {

PolicyIo MakeIo(bool stochastic) {
  ModelCard card;
  InputFeature speed{"speed", 1, {}};
  speed.preprocess.mean = {10};
  speed.preprocess.std = {2};
  card.inputs = {speed, {"steering", 1, {}}, {"sensors", 3, {}}};
  card.actions = {{"throttle", 0, 1}, {"brake", 0, 1}, {"steer", -1, 1}};
  if (stochastic) card.log_std = {-1, -1, -1};
  return std::move(PolicyIo::FromCard(card)).value();
}

bool HasError(const PredictRequest& r, const std::string& field, const std::string& fragment) {
  for (const auto& e : r.errors) {
    if (e.field == field && e.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

std::string Dump(const PredictRequest& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.field + ": " + e.message + "\n";
  return out;
}

TEST(PredictParserTest, ParsesAndPreprocessesRows) {
  PredictParser parser;
  PolicyIo io = MakeIo(false);
  PredictRequest r = parser.Parse(
      R"({"observations":[{"speed":14,"steering":0.5,"sensors":[1,2,3]},
                          {"sensors":[4,5,6],"steering":-1,"speed":10}]})",
      io);
  ASSERT_TRUE(r.errors.empty()) << Dump(r);
  EXPECT_EQ(r.batch, 2);
  EXPECT_TRUE(r.deterministic);
  EXPECT_EQ(r.inputs, (std::vector<float>{2, 0.5f, 1, 2, 3, 0, -1, 4, 5, 6}));
}

TEST(PredictParserTest, ReadsOptionalFields) {
  PredictParser parser;
  PolicyIo io = MakeIo(true);
  PredictRequest r = parser.Parse(
      R"({"observations":[{"speed":1,"steering":0,"sensors":[0,0,0]}],"deterministic":false,"seed":42,"version":"v0.1.0"})",
      io);
  ASSERT_TRUE(r.errors.empty()) << Dump(r);
  EXPECT_FALSE(r.deterministic);
  EXPECT_EQ(r.seed.value(), 42u);
  EXPECT_EQ(r.version.value(), "v0.1.0");
}

TEST(PredictParserTest, NamesEveryBadField) {
  PredictParser parser;
  PolicyIo io = MakeIo(false);
  PredictRequest r = parser.Parse(
      R"({"observations":[{"speed":250,"steering":"left","sensors":[1,2]},
                          {"speed":1,"sensors":[1,2,1e6]}],"extra":1,"deterministic":false})",
      io);
  EXPECT_TRUE(HasError(r, "observations[0].speed", "within [0, 200]")) << Dump(r);
  EXPECT_TRUE(HasError(r, "observations[0].steering", "must be a number (got a string)"))
      << Dump(r);
  EXPECT_TRUE(HasError(r, "observations[0].sensors", "exactly 3")) << Dump(r);
  EXPECT_TRUE(HasError(r, "observations[1].steering", "field required")) << Dump(r);
  EXPECT_TRUE(HasError(r, "observations[1].sensors[2]", "within [-1000, 1000]")) << Dump(r);
  EXPECT_TRUE(HasError(r, "extra", "unknown field")) << Dump(r);
  EXPECT_TRUE(HasError(r, "deterministic", "log_std")) << Dump(r);
}

TEST(PredictParserTest, RefusesMalformedAndNonFinite) {
  PredictParser parser;
  PolicyIo io = MakeIo(false);
  PredictRequest unterminated = parser.Parse("{\"observations\": [", io);
  EXPECT_TRUE(HasError(unterminated, "body", "malformed")) << Dump(unterminated);
  EXPECT_TRUE(HasError(parser.Parse("[1,2]", io), "body", "JSON object"));
  EXPECT_TRUE(HasError(parser.Parse("", io), "body", "malformed"));
  PredictRequest nan =
      parser.Parse(R"({"observations":[{"speed":NaN,"steering":0,"sensors":[0,0,0]}]})", io);
  EXPECT_FALSE(nan.errors.empty());
  EXPECT_EQ(nan.errors.front().field, "observations[0].speed") << Dump(nan);
  PredictRequest huge =
      parser.Parse(R"({"observations":[{"speed":1e999,"steering":0,"sensors":[0,0,0]}]})", io);
  EXPECT_TRUE(HasError(huge, "observations[0].speed", "finite")) << Dump(huge);
}

TEST(PredictParserTest, BatchLimits) {
  PredictParser parser;
  PolicyIo io = MakeIo(false);
  EXPECT_TRUE(HasError(parser.Parse(R"({"observations":[]})", io), "observations", "at least 1"));
  EXPECT_TRUE(
      HasError(parser.Parse(R"({"deterministic":true})", io), "observations", "field required"));
  std::string many = R"({"observations":[)";
  for (int i = 0; i < 1001; ++i) {
    many += (i ? "," : "") + std::string(R"({"speed":1,"steering":0,"sensors":[0,0,0]})");
  }
  many += "]}";
  PredictRequest r = parser.Parse(many, io);
  EXPECT_TRUE(HasError(r, "observations", "at most 1000")) << Dump(r);
}

}  // namespace
}  // namespace brainstem
