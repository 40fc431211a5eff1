#include "brainstem/http_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace brainstem::client {
namespace {

const std::vector<InputFeature> kCarla = {{"speed", 1}, {"steering", 1}, {"sensors", 3}};

TEST(AppendPredictBody, CarlaRowsRoundTripExactly) {
  const float rows[] = {30.5f, 0.1f, 0.3333333f, -1e-7f, 1000.0f, 0.0f, -1.0f, 1.0f, 2.0f, 3.0f};
  std::string body;
  ASSERT_TRUE(AppendPredictBody(rows, 2, kCarla, true, std::nullopt, &body).ok());
  EXPECT_EQ(body,
            R"({"observations":[{"speed":30.5,"steering":0.1,"sensors":[0.3333333,-1e-07,1000]},)"
            R"({"speed":0,"steering":-1,"sensors":[1,2,3]}],"deterministic":true})");
  // Every float prints in its shortest form that parses back to the same float.
  simdjson::dom::parser parser;
  auto doc = parser.parse(body);
  double v = doc["observations"].at(0)["sensors"].at(0).get_double();
  EXPECT_EQ(static_cast<float>(v), 0.3333333f);
}

TEST(AppendPredictBody, StochasticWithSeedAndSizeOneSensors) {
  const std::vector<InputFeature> features = {{"speed", 1}, {"sensors", 1}};
  const float rows[] = {1.0f, 2.0f};
  std::string body;
  ASSERT_TRUE(AppendPredictBody(rows, 1, features, false, 18446744073709551615ull, &body).ok());
  EXPECT_EQ(body, R"({"observations":[{"speed":1,"sensors":[2]}],"deterministic":false,)"
                  R"("seed":18446744073709551615})");
}

TEST(AppendPredictBody, RefusesNonFinite) {
  float rows[] = {1, 0, 0, std::numeric_limits<float>::quiet_NaN(), 0};
  std::string body;
  Status s = AppendPredictBody(rows, 1, kCarla, true, std::nullopt, &body);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("observations[0].sensors[1]"), std::string::npos) << s.message();
}

TEST(JsonReader, Metadata) {
  JsonReader json;
  auto info = json.ParseMetadata(
      R"({"modelName":"lane-keeping","version":"0.2.0","inputShape":[10],)"
      R"("inputs":[{"name":"speed","size":1},{"name":"steering","size":1},{"name":"sensors","size":8}],)"
      R"("actionSpace":{"throttle":{"low":0,"high":1},"brake":{"low":0,"high":1},"steer":{"low":-1,"high":1}}})");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->name, "lane-keeping");
  EXPECT_EQ(info->version, "0.2.0");
  EXPECT_EQ(info->input_width, 10);
  ASSERT_EQ(info->inputs.size(), 3u);
  EXPECT_EQ(info->inputs[2].name, "sensors");
  EXPECT_EQ(info->inputs[2].size, 8);
  EXPECT_EQ(info->actions, (std::vector<std::string>{"throttle", "brake", "steer"}));
  EXPECT_FALSE(json.ParseMetadata(R"({"inputs":[]})").ok());
  EXPECT_FALSE(json.ParseMetadata("<html>").ok());
}

TEST(JsonReader, PredictResponseMapsColumnsByName) {
  JsonReader json;
  const std::vector<std::string> names = {"throttle", "brake", "steer"};
  float out[6] = {};
  double ms = -1;
  ASSERT_TRUE(
      json.ParsePredictResponse(
              R"({"actions":[{"steer":0.07,"throttle":0.52,"brake":0},)"
              R"({"throttle":1,"brake":0.25,"steer":-1}],"version":"0.2.0","timingMs":0.021})",
              names, 2, out, &ms)
          .ok());
  EXPECT_FLOAT_EQ(out[0], 0.52f);
  EXPECT_FLOAT_EQ(out[1], 0.0f);
  EXPECT_FLOAT_EQ(out[2], 0.07f);
  EXPECT_FLOAT_EQ(out[3], 1.0f);
  EXPECT_FLOAT_EQ(out[4], 0.25f);
  EXPECT_FLOAT_EQ(out[5], -1.0f);
  EXPECT_DOUBLE_EQ(ms, 0.021);
  // Wrong row count, missing action, non-number.
  EXPECT_FALSE(json.ParsePredictResponse(R"({"actions":[]})", names, 1, out, nullptr).ok());
  EXPECT_FALSE(
      json.ParsePredictResponse(R"({"actions":[{"throttle":1,"brake":0}]})", names, 1, out, nullptr)
          .ok());
  EXPECT_FALSE(json.ParsePredictResponse(R"({"actions":[{"throttle":"x","brake":0,"steer":0}]})",
                                         names, 1, out, nullptr)
                   .ok());
}

TEST(JsonReader, ErrorBodiesBecomeStatuses) {
  JsonReader json;
  Status s = json.ErrorFromResponse(
      422,
      R"j({"error":"VALIDATION_ERROR","message":"request validation failed: observations[0].speed: must be within [0, 200] (got 300)"})j");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "HTTP 422 VALIDATION_ERROR: request validation failed: observations[0].speed: must "
            "be within [0, 200] (got 300)");
  EXPECT_EQ(
      json.ErrorFromResponse(503, R"({"error":"SERVICE_UNAVAILABLE","message":"full"})").code(),
      StatusCode::kUnavailable);
  EXPECT_EQ(json.ErrorFromResponse(504, "{}").code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(json.ErrorFromResponse(404, "{}").code(), StatusCode::kNotFound);
  EXPECT_EQ(json.ErrorFromResponse(413, "{}").code(), StatusCode::kResourceExhausted);
  Status raw = json.ErrorFromResponse(500, "oops");
  EXPECT_EQ(raw.code(), StatusCode::kInternal);
  EXPECT_EQ(raw.message(), "HTTP 500: oops");
}

}  // namespace
}  // namespace brainstem::client
