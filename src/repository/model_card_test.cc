#include "repository/model_card.h"

#include <gtest/gtest.h>

#include <string>

namespace brainstem {
namespace {

constexpr char kValidCard[] = R"(
name: lane-keeping
version: 0.1.0
description: "Lane-keeping MLP imitating a pure-pursuit + PI speed controller"
files:
  torchscript: model.pt
  onnx: model.onnx
input:
  - name: speed
    size: 1
    preprocess: {mean: 30.0, std: 15.0, clip: [-5.0, 5.0]}
  - name: steering
    size: 1
  - name: sensors
    size: 4
    preprocess:
      mean: [1, 2, 3, 4]
      std: [0.5, 0.5, 0.5, 0.25]
      scale: 2
      offset: [0.1, 0.2, 0.3, 0.4]
output:
  actions:
    - {name: throttle, low: 0.0, high: 1.0}
    - {name: brake, low: 0.0, high: 1.0}
    - {name: steer, low: -1.0, high: 1.0}
  log_std: [-2.0, -2.0, -2.5]
artifact_hashes:
  model.pt: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  model.onnx: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
info:
  framework: "torch 1.13.1"
  episodes: 200
  deterministic: true
)";

// Replaces the first occurrence of `from` in the valid card, failing the test if absent so
// that a broken edit cannot make an error test pass vacuously.
std::string Edit(const std::string& from, const std::string& to) {
  std::string card = kValidCard;
  size_t pos = card.find(from);
  EXPECT_NE(pos, std::string::npos) << "test edit target not found: " << from;
  if (pos != std::string::npos) card.replace(pos, from.size(), to);
  return card;
}

// Expects kInvalidArgument with every one of `needles` in the message.
void ExpectInvalid(const std::string& yaml, std::initializer_list<std::string> needles) {
  Result<ModelCard> card = ParseModelCard(yaml);
  ASSERT_FALSE(card.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(card.status().code(), StatusCode::kInvalidArgument);
  for (const auto& needle : needles) {
    EXPECT_NE(card.status().message().find(needle), std::string::npos)
        << "'" << needle << "' not in: " << card.status().message();
  }
}

TEST(ModelCardTest, ParsesValidCard) {
  Result<ModelCard> parsed = ParseModelCard(kValidCard);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const ModelCard& card = *parsed;
  EXPECT_EQ(card.name, "lane-keeping");
  EXPECT_EQ(card.version, "0.1.0");
  EXPECT_EQ(card.description, "Lane-keeping MLP imitating a pure-pursuit + PI speed controller");
  ASSERT_EQ(card.files.size(), 2u);
  EXPECT_EQ(card.files.at(ModelFormat::kTorchScript), "model.pt");
  EXPECT_EQ(card.files.at(ModelFormat::kOnnx), "model.onnx");

  ASSERT_EQ(card.inputs.size(), 3u);
  EXPECT_EQ(card.inputs[0].name, "speed");
  EXPECT_EQ(card.inputs[0].preprocess.mean, std::vector<float>{30.0f});
  EXPECT_EQ(card.inputs[0].preprocess.std, std::vector<float>{15.0f});
  EXPECT_EQ(card.inputs[0].preprocess.clip_low, -5.0f);
  EXPECT_EQ(card.inputs[0].preprocess.clip_high, 5.0f);
  EXPECT_TRUE(card.inputs[1].preprocess.mean.empty());
  EXPECT_FALSE(card.inputs[1].preprocess.clip_low.has_value());
  EXPECT_EQ(card.inputs[2].size, 4);
  EXPECT_EQ(card.inputs[2].preprocess.std, (std::vector<float>{0.5f, 0.5f, 0.5f, 0.25f}));
  EXPECT_EQ(card.inputs[2].preprocess.scale, std::vector<float>{2.0f});
  EXPECT_EQ(card.inputs[2].preprocess.offset.size(), 4u);
  EXPECT_EQ(card.input_width(), 6);

  ASSERT_EQ(card.actions.size(), 3u);
  EXPECT_EQ(card.actions[2].name, "steer");
  EXPECT_EQ(card.actions[2].low, -1.0f);
  EXPECT_EQ(card.output_width(), 3);
  EXPECT_EQ(card.log_std, (std::vector<float>{-2.0f, -2.0f, -2.5f}));
  EXPECT_EQ(card.artifact_hashes.size(), 2u);
  EXPECT_EQ(card.info.at("framework"), "torch 1.13.1");
  EXPECT_EQ(card.info.at("episodes"), "200");
  EXPECT_EQ(card.info.at("deterministic"), "true");
}

TEST(ModelCardTest, MinimalCardParses) {
  Result<ModelCard> card = ParseModelCard(R"(
name: m
version: v1.0.0-rc.1
files: {onnx: m.onnx}
input: [{name: x}]
output: {actions: [{name: a, low: -2, high: 2}]}
)");
  ASSERT_TRUE(card.ok()) << card.status().ToString();
  EXPECT_EQ(card->inputs[0].size, 1);  // size defaults to 1
  EXPECT_TRUE(card->log_std.empty());
  EXPECT_TRUE(card->artifact_hashes.empty());
}

TEST(ModelCardTest, RoundTripsThroughYaml) {
  Result<ModelCard> first = ParseModelCard(kValidCard);
  ASSERT_TRUE(first.ok());
  const std::string yaml = ModelCardToYaml(*first);
  Result<ModelCard> second = ParseModelCard(yaml);
  ASSERT_TRUE(second.ok()) << second.status().ToString() << "\n" << yaml;
  EXPECT_EQ(ModelCardToYaml(*second), yaml);
  EXPECT_EQ(second->name, first->name);
  EXPECT_EQ(second->description, first->description);
  EXPECT_EQ(second->files, first->files);
  ASSERT_EQ(second->inputs.size(), first->inputs.size());
  for (size_t i = 0; i < first->inputs.size(); ++i) {
    EXPECT_EQ(second->inputs[i].name, first->inputs[i].name);
    EXPECT_EQ(second->inputs[i].size, first->inputs[i].size);
    EXPECT_EQ(second->inputs[i].preprocess.mean, first->inputs[i].preprocess.mean);
    EXPECT_EQ(second->inputs[i].preprocess.std, first->inputs[i].preprocess.std);
    EXPECT_EQ(second->inputs[i].preprocess.scale, first->inputs[i].preprocess.scale);
    EXPECT_EQ(second->inputs[i].preprocess.offset, first->inputs[i].preprocess.offset);
    EXPECT_EQ(second->inputs[i].preprocess.clip_low, first->inputs[i].preprocess.clip_low);
    EXPECT_EQ(second->inputs[i].preprocess.clip_high, first->inputs[i].preprocess.clip_high);
  }
  ASSERT_EQ(second->actions.size(), first->actions.size());
  for (size_t i = 0; i < first->actions.size(); ++i) {
    EXPECT_EQ(second->actions[i].name, first->actions[i].name);
    EXPECT_EQ(second->actions[i].low, first->actions[i].low);
    EXPECT_EQ(second->actions[i].high, first->actions[i].high);
  }
  EXPECT_EQ(second->log_std, first->log_std);
  EXPECT_EQ(second->artifact_hashes, first->artifact_hashes);
  EXPECT_EQ(second->info, first->info);
  // Numbers are written in their shortest form, not yaml-cpp's 9-digit one.
  EXPECT_NE(yaml.find("0.1"), std::string::npos);
  EXPECT_EQ(yaml.find("0.100000001"), std::string::npos) << yaml;
}

TEST(ModelCardTest, EmitQuotesStringsThatLookLikeOtherTypes) {
  Result<ModelCard> card = ParseModelCard(Edit("{name: brake,", "{name: \"yes\","));
  ASSERT_TRUE(card.ok()) << card.status().ToString();
  const std::string yaml = ModelCardToYaml(*card);
  EXPECT_NE(yaml.find("name: \"yes\""), std::string::npos) << yaml;
  Result<ModelCard> again = ParseModelCard(yaml);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->actions[1].name, "yes");
}

TEST(ModelCardTest, UnknownKeysNameTheirPath) {
  ExpectInvalid(Edit("description:", "descripton:"),
                {"unknown key 'descripton'", "allowed: name, version"});
  ExpectInvalid(Edit("    size: 4\n    preprocess:", "    size: 4\n    preproces:"),
                {"unknown key 'input[2].preproces' (allowed: name, size, preprocess)"});
  ExpectInvalid(Edit("mean: 30.0", "men: 30.0"),
                {"unknown key 'input[0].preprocess.men'", "mean, std, scale, offset, clip"});
  ExpectInvalid(Edit("{name: brake,", "{name: brake, hgh: 3,"),
                {"unknown key 'output.actions[1].hgh'", "name, low, high"});
  ExpectInvalid(Edit("  log_std:", "  logstd:"), {"unknown key 'output.logstd'"});
}

TEST(ModelCardTest, KindIsOptionalAndMustBePolicy) {
  // Cards written before OCR joined the repository have no kind: they are policies.
  EXPECT_TRUE(ParseModelCard(kValidCard).ok());
  Result<ModelCard> policy = ParseModelCard(std::string("kind: policy\n") + kValidCard);
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  ExpectInvalid(std::string("kind: ocr\n") + kValidCard,
                {"model card: kind: 'ocr' is not a policy"});
}

TEST(ModelCardTest, DuplicateKeysAreRejected) {
  ExpectInvalid(Edit("name: lane-keeping", "name: lane-keeping\nname: other"),
                {"duplicate key 'name'"});
}

TEST(ModelCardTest, RequiredKeys) {
  ExpectInvalid(Edit("name: lane-keeping\n", ""), {"name: is required"});
  ExpectInvalid(Edit("version: 0.1.0\n", ""), {"version: is required"});
  ExpectInvalid(Edit("files:\n  torchscript: model.pt\n  onnx: model.onnx\n", ""),
                {"files: is required"});
  ExpectInvalid(Edit("    - {name: throttle", "    - {low: 0, high: 1}\n    - {name: throttle"),
                {"output.actions[0].name: is required"});
  ExpectInvalid(Edit("{name: brake, low: 0.0, high: 1.0}", "{name: brake, low: 0.0}"),
                {"output.actions[1].high: is required"});
  ExpectInvalid("", {"mapping"});
  ExpectInvalid("- 1\n- 2\n", {"mapping"});
}

TEST(ModelCardTest, VersionMustBeSemver) {
  ExpectInvalid(Edit("version: 0.1.0", "version: 0.1"), {"version:", "'0.1'"});
}

TEST(ModelCardTest, FilesFormats) {
  ExpectInvalid(Edit("onnx: model.onnx", "tflite: model.tflite"),
                {"files", "unknown format 'tflite'", "allowed: torchscript, onnx"});
  ExpectInvalid(Edit("files:\n  torchscript: model.pt\n  onnx: model.onnx\n", "files: {}\n"),
                {"files", "at least one format"});
  ExpectInvalid(Edit("torchscript: model.pt", "torchscript: ../other/model.pt"),
                {"files.torchscript", "must not leave"});
  ExpectInvalid(Edit("torchscript: model.pt", "torchscript: /etc/passwd"),
                {"files.torchscript", "relative"});
}

TEST(ModelCardTest, InputValidation) {
  ExpectInvalid(
      "name: m\nversion: 1.0.0\nfiles: {onnx: m.onnx}\ninput: []\n"
      "output: {actions: [{name: a, low: 0, high: 1}]}\n",
      {"input: must be a non-empty list"});
  ExpectInvalid(Edit("size: 4", "size: 0"), {"input[2].size", "at least 1"});
  ExpectInvalid(Edit("size: 4", "size: 2.5"), {"input[2].size", "not an integer"});
  ExpectInvalid(Edit("mean: [1, 2, 3, 4]", "mean: [1, 2, 3]"),
                {"input[2].preprocess.mean", "3 values", "expected 1 or size (4)"});
  ExpectInvalid(Edit("std: 15.0", "std: 0"), {"input[0].preprocess.std", "non-zero"});
  ExpectInvalid(Edit("std: [0.5, 0.5, 0.5, 0.25]", "std: [0.5, 0.0, 0.5, 0.25]"),
                {"input[2].preprocess.std", "non-zero"});
  ExpectInvalid(Edit("clip: [-5.0, 5.0]", "clip: [5.0, -5.0]"),
                {"input[0].preprocess.clip", "greater than high"});
  ExpectInvalid(Edit("clip: [-5.0, 5.0]", "clip: [1]"),
                {"input[0].preprocess.clip", "[low, high]"});
  ExpectInvalid(Edit("mean: 30.0", "mean: fast"), {"input[0].preprocess.mean", "'fast'"});
  ExpectInvalid(Edit("mean: 30.0", "mean: .nan"), {"input[0].preprocess.mean", "finite"});
  ExpectInvalid(Edit("- name: steering", "- name: speed"), {"input[1].name", "duplicate"});
}

TEST(ModelCardTest, OutputValidation) {
  ExpectInvalid(Edit("{name: steer, low: -1.0, high: 1.0}", "{name: steer, low: 1.0, high: -1.0}"),
                {"output.actions[2]", "low (1.0) is greater than high (-1.0)"});
  ExpectInvalid(Edit("{name: brake,", "{name: throttle,"),
                {"output.actions[1].name", "duplicate action name 'throttle'"});
  ExpectInvalid(Edit("log_std: [-2.0, -2.0, -2.5]", "log_std: [-2.0, -2.0]"),
                {"output.log_std", "2 values", "one per action (3)"});
  ExpectInvalid(Edit("  actions:", "  actions: []\n  unused_actions:"),
                {"unknown key 'output.unused_actions'"});
}

TEST(ModelCardTest, HashesAndInfo) {
  ExpectInvalid(Edit("\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
                     "\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\""),
                {"artifact_hashes.model.pt", "64 lowercase hex"});
  ExpectInvalid(
      Edit("\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"", "\"0123\""),
      {"artifact_hashes.model.pt"});
  ExpectInvalid(Edit("episodes: 200", "episodes: [1, 2]"), {"info.episodes", "scalar"});
}

TEST(ModelCardTest, SyntaxErrorIsInvalidArgument) { ExpectInvalid("name: [unclosed\n", {"YAML"}); }

TEST(ModelCardTest, LoadModelCardMissingFileIsNotFound) {
  Result<ModelCard> card = LoadModelCard("/nonexistent/dir/model_card.yaml");
  ASSERT_FALSE(card.ok());
  EXPECT_EQ(card.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace brainstem
