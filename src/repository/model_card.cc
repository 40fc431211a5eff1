#include "repository/model_card.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>

#include "repository/semver.h"

namespace brainstem {
namespace {

// The format names are owned by backends/backend.h (ModelFormatName), which lives in another
// library; the card parser keeps its own small table so that the repository library does not
// depend on any backend being linked.
struct FormatEntry {
  ModelFormat format;
  std::string_view name;
};
constexpr FormatEntry kFormats[] = {
    {ModelFormat::kTorchScript, "torchscript"},
    {ModelFormat::kOnnx, "onnx"},
};

std::string_view FormatToName(ModelFormat format) {
  for (const auto& entry : kFormats) {
    if (entry.format == format) return entry.name;
  }
  return "unknown";
}

std::string AllowedFormats() {
  std::string out;
  for (const auto& entry : kFormats) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

Status CardError(const std::string& path, const std::string& problem) {
  return InvalidArgumentError("model card: " + path + ": " + problem);
}

std::string Join(const std::vector<std::string_view>& items) {
  std::string out;
  for (auto item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Present and not an explicit null ("key:" with no value counts as missing).
bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

// Rejects keys outside `allowed` and duplicate keys, naming the full dotted path. yaml-cpp keeps
// duplicate keys and a lookup returns the first, so a second value would be silently ignored.
Status CheckKeys(const YAML::Node& map, const std::string& path,
                 const std::vector<std::string_view>& allowed) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      return InvalidArgumentError("model card: " + (path.empty() ? "top level" : path) +
                                  ": keys must be plain strings");
    }
    const std::string key = kv.first.Scalar();
    bool known = false;
    for (auto a : allowed) known = known || (a == key);
    if (!known) {
      return InvalidArgumentError("model card: unknown key '" + Child(path, key) +
                                  "' (allowed: " + Join(allowed) + ")");
    }
    if (!seen.insert(key).second) {
      return InvalidArgumentError("model card: duplicate key '" + Child(path, key) + "'");
    }
  }
  return Status::Ok();
}

Status RequireMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return CardError(path, "must be a mapping");
  return Status::Ok();
}

Result<std::string> GetString(const YAML::Node& node, const std::string& path, bool non_empty) {
  if (!node.IsScalar()) return CardError(path, "must be a string");
  std::string value = node.Scalar();
  if (non_empty && value.empty()) return CardError(path, "must not be empty");
  return value;
}

Result<float> GetFloat(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return CardError(path, "must be a number");
  double value = 0;
  try {
    value = node.as<double>();
  } catch (const YAML::Exception&) {
    return CardError(path, "'" + node.Scalar() + "' is not a number");
  }
  if (!std::isfinite(value) || std::fabs(value) > std::numeric_limits<float>::max()) {
    return CardError(path, "'" + node.Scalar() + "' is not a finite float32 number");
  }
  return static_cast<float>(value);
}

Result<int64_t> GetInt(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return CardError(path, "must be an integer");
  try {
    return node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return CardError(path, "'" + node.Scalar() + "' is not an integer");
  }
}

// A scalar (broadcast to every element) or a list of exactly 1 or `size` numbers.
Result<std::vector<float>> GetFloatVector(const YAML::Node& node, const std::string& path,
                                          int64_t size) {
  std::vector<float> values;
  if (node.IsScalar()) {
    ASSIGN_OR_RETURN(float v, GetFloat(node, path));
    values.push_back(v);
    return values;
  }
  if (!node.IsSequence()) return CardError(path, "must be a number or a list of numbers");
  for (size_t i = 0; i < node.size(); ++i) {
    ASSIGN_OR_RETURN(float v, GetFloat(node[i], Index(path, i)));
    values.push_back(v);
  }
  if (values.size() != 1 && static_cast<int64_t>(values.size()) != size) {
    return CardError(path, "has " + std::to_string(values.size()) +
                               " values; expected 1 or size (" + std::to_string(size) + ")");
  }
  return values;
}

// File names in a card are relative to the version directory and must stay inside it, so a
// card cannot make the server hash or load an arbitrary file.
Status CheckRelativeFile(const std::string& file, const std::string& path) {
  if (file.empty()) return CardError(path, "file name must not be empty");
  std::filesystem::path p(file);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) {
    return CardError(path, "'" + file + "' must be relative to the version directory");
  }
  for (const auto& part : p) {
    if (part == "..") {
      return CardError(path, "'" + file + "' must not leave the version directory");
    }
  }
  return Status::Ok();
}

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<Preprocess> ParsePreprocess(const YAML::Node& node, const std::string& path, int64_t size) {
  RETURN_IF_ERROR(RequireMap(node, path));
  RETURN_IF_ERROR(CheckKeys(node, path, {"mean", "std", "scale", "offset", "clip"}));
  Preprocess pre;
  if (Present(node["mean"])) {
    ASSIGN_OR_RETURN(pre.mean, GetFloatVector(node["mean"], Child(path, "mean"), size));
  }
  if (Present(node["std"])) {
    const std::string std_path = Child(path, "std");
    ASSIGN_OR_RETURN(pre.std, GetFloatVector(node["std"], std_path, size));
    for (float s : pre.std) {
      if (s == 0.0f) return CardError(std_path, "must be non-zero (it divides)");
    }
  }
  if (Present(node["scale"])) {
    ASSIGN_OR_RETURN(pre.scale, GetFloatVector(node["scale"], Child(path, "scale"), size));
  }
  if (Present(node["offset"])) {
    ASSIGN_OR_RETURN(pre.offset, GetFloatVector(node["offset"], Child(path, "offset"), size));
  }
  if (Present(node["clip"])) {
    const std::string clip_path = Child(path, "clip");
    const YAML::Node clip = node["clip"];
    if (!clip.IsSequence() || clip.size() != 2) {
      return CardError(clip_path, "must be a list [low, high]");
    }
    ASSIGN_OR_RETURN(float low, GetFloat(clip[0], Index(clip_path, 0)));
    ASSIGN_OR_RETURN(float high, GetFloat(clip[1], Index(clip_path, 1)));
    if (low > high) {
      return CardError(clip_path, "low (" + clip[0].Scalar() + ") is greater than high (" +
                                      clip[1].Scalar() + ")");
    }
    pre.clip_low = low;
    pre.clip_high = high;
  }
  return pre;
}

Result<std::vector<InputFeature>> ParseInputs(const YAML::Node& node) {
  const std::string path = "input";
  if (!Present(node)) return CardError(path, "is required");
  if (!node.IsSequence() || node.size() == 0) {
    return CardError(path, "must be a non-empty list of features");
  }
  std::vector<InputFeature> inputs;
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_path = Index(path, i);
    const YAML::Node item = node[i];
    RETURN_IF_ERROR(RequireMap(item, item_path));
    RETURN_IF_ERROR(CheckKeys(item, item_path, {"name", "size", "preprocess"}));
    InputFeature feature;
    if (!Present(item["name"])) return CardError(Child(item_path, "name"), "is required");
    ASSIGN_OR_RETURN(feature.name, GetString(item["name"], Child(item_path, "name"), true));
    if (!names.insert(feature.name).second) {
      return CardError(Child(item_path, "name"), "duplicate input name '" + feature.name + "'");
    }
    if (Present(item["size"])) {
      ASSIGN_OR_RETURN(feature.size, GetInt(item["size"], Child(item_path, "size")));
      if (feature.size < 1) {
        return CardError(Child(item_path, "size"),
                         "must be at least 1 (got " + std::to_string(feature.size) + ")");
      }
    }
    if (Present(item["preprocess"])) {
      ASSIGN_OR_RETURN(
          feature.preprocess,
          ParsePreprocess(item["preprocess"], Child(item_path, "preprocess"), feature.size));
    }
    inputs.push_back(std::move(feature));
  }
  return inputs;
}

Status ParseOutput(const YAML::Node& node, ModelCard& card) {
  const std::string path = "output";
  if (!Present(node)) return CardError(path, "is required");
  RETURN_IF_ERROR(RequireMap(node, path));
  RETURN_IF_ERROR(CheckKeys(node, path, {"actions", "log_std"}));

  const std::string actions_path = "output.actions";
  const YAML::Node actions = node["actions"];
  if (!Present(actions)) return CardError(actions_path, "is required");
  if (!actions.IsSequence() || actions.size() == 0) {
    return CardError(actions_path, "must be a non-empty list of actions");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < actions.size(); ++i) {
    const std::string item_path = Index(actions_path, i);
    const YAML::Node item = actions[i];
    RETURN_IF_ERROR(RequireMap(item, item_path));
    RETURN_IF_ERROR(CheckKeys(item, item_path, {"name", "low", "high"}));
    ActionSpec action;
    for (std::string_view key : {"name", "low", "high"}) {
      if (!Present(item[std::string(key)])) return CardError(Child(item_path, key), "is required");
    }
    ASSIGN_OR_RETURN(action.name, GetString(item["name"], Child(item_path, "name"), true));
    if (!names.insert(action.name).second) {
      return CardError(Child(item_path, "name"), "duplicate action name '" + action.name + "'");
    }
    ASSIGN_OR_RETURN(action.low, GetFloat(item["low"], Child(item_path, "low")));
    ASSIGN_OR_RETURN(action.high, GetFloat(item["high"], Child(item_path, "high")));
    if (action.low > action.high) {
      return CardError(item_path, "low (" + item["low"].Scalar() + ") is greater than high (" +
                                      item["high"].Scalar() + ")");
    }
    card.actions.push_back(std::move(action));
  }

  if (Present(node["log_std"])) {
    const std::string ls_path = "output.log_std";
    const YAML::Node ls = node["log_std"];
    if (!ls.IsSequence()) return CardError(ls_path, "must be a list of numbers");
    for (size_t i = 0; i < ls.size(); ++i) {
      ASSIGN_OR_RETURN(float v, GetFloat(ls[i], Index(ls_path, i)));
      card.log_std.push_back(v);
    }
    if (card.log_std.size() != card.actions.size()) {
      return CardError(ls_path, "has " + std::to_string(card.log_std.size()) +
                                    " values; expected one per action (" +
                                    std::to_string(card.actions.size()) + ")");
    }
  }
  return Status::Ok();
}

Status ParseFiles(const YAML::Node& node, ModelCard& card) {
  const std::string path = "files";
  if (!Present(node)) return CardError(path, "is required");
  if (!node.IsMap() || node.size() == 0) {
    return CardError(path, "must map at least one format (" + AllowedFormats() + ") to a file");
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return CardError(path, "format names must be strings");
    const std::string name = kv.first.Scalar();
    const FormatEntry* entry = nullptr;
    for (const auto& e : kFormats) {
      if (e.name == name) entry = &e;
    }
    if (entry == nullptr) {
      return InvalidArgumentError("model card: files: unknown format '" + name +
                                  "' (allowed: " + AllowedFormats() + ")");
    }
    if (card.files.count(entry->format) != 0) {
      return CardError(Child(path, name), "listed twice");
    }
    ASSIGN_OR_RETURN(std::string file, GetString(kv.second, Child(path, name), true));
    RETURN_IF_ERROR(CheckRelativeFile(file, Child(path, name)));
    card.files[entry->format] = file;
  }
  return Status::Ok();
}

Status ParseHashes(const YAML::Node& node, ModelCard& card) {
  const std::string path = "artifact_hashes";
  if (!node.IsMap()) return CardError(path, "must map file names to sha256 hex strings");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return CardError(path, "file names must be strings");
    const std::string file = kv.first.Scalar();
    const std::string item_path = Child(path, file);
    RETURN_IF_ERROR(CheckRelativeFile(file, item_path));
    ASSIGN_OR_RETURN(std::string hash, GetString(kv.second, item_path, true));
    if (!IsLowerHex64(hash)) {
      return CardError(item_path, "'" + hash + "' is not a sha256 (64 lowercase hex digits)");
    }
    if (!card.artifact_hashes.emplace(file, hash).second) {
      return CardError(item_path, "listed twice");
    }
  }
  return Status::Ok();
}

Status ParseInfo(const YAML::Node& node, ModelCard& card) {
  const std::string path = "info";
  if (!node.IsMap()) return CardError(path, "must be a mapping of names to scalar values");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return CardError(path, "keys must be strings");
    const std::string key = kv.first.Scalar();
    // Null values ("key:" with nothing) become empty strings rather than an error.
    if (kv.second.IsNull()) {
      card.info[key] = "";
      continue;
    }
    if (!kv.second.IsScalar()) {
      return CardError(Child(path, key), "must be a scalar (string, number or boolean)");
    }
    if (!card.info.emplace(key, kv.second.Scalar()).second) {
      return CardError(Child(path, key), "listed twice");
    }
  }
  return Status::Ok();
}

Result<ModelCard> ParseCardNode(const YAML::Node& root) {
  if (!root.IsMap()) return InvalidArgumentError("model card: the document must be a mapping");
  RETURN_IF_ERROR(CheckKeys(root, "",
                            {"name", "version", "description", "files", "input", "output",
                             "artifact_hashes", "info", "kind"}));
  ModelCard card;
  // `kind` is optional for policies (cards predate it); any other kind has its own parser.
  if (Present(root["kind"])) {
    ASSIGN_OR_RETURN(std::string kind, GetString(root["kind"], "kind", true));
    if (kind != "policy") {
      return CardError("kind",
                       "'" + kind + "' is not a policy card (this parser reads kind: policy)");
    }
  }
  if (!Present(root["name"])) return CardError("name", "is required");
  ASSIGN_OR_RETURN(card.name, GetString(root["name"], "name", true));

  if (!Present(root["version"])) return CardError("version", "is required");
  ASSIGN_OR_RETURN(card.version, GetString(root["version"], "version", true));
  if (auto parsed = ParseSemVer(card.version); !parsed.ok()) {
    return CardError("version", parsed.status().message());
  }

  if (Present(root["description"])) {
    ASSIGN_OR_RETURN(card.description, GetString(root["description"], "description", false));
  }
  RETURN_IF_ERROR(ParseFiles(root["files"], card));
  ASSIGN_OR_RETURN(card.inputs, ParseInputs(root["input"]));
  RETURN_IF_ERROR(ParseOutput(root["output"], card));
  if (Present(root["artifact_hashes"])) {
    RETURN_IF_ERROR(ParseHashes(root["artifact_hashes"], card));
  }
  if (Present(root["info"])) RETURN_IF_ERROR(ParseInfo(root["info"], card));
  return card;
}

// Shortest text that reads back as the same float, so 0.1f is written "0.1", not
// "0.100000001" as yaml-cpp's fixed precision would.
std::string FloatText(float v) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return std::to_string(v);
  return std::string(buf, ptr);
}

// Quotes strings that other YAML readers (PyYAML follows YAML 1.1) would take for a boolean,
// null or number, so that a tool reading the emitted card sees the same text we do.
void EmitString(YAML::Emitter& out, const std::string& s) {
  std::string lower;
  for (char c : s) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  static const std::set<std::string> kAmbiguous = {"",   "~",  "null", "y",    "n",    "yes",
                                                   "no", "on", "off",  "true", "false"};
  bool ambiguous = kAmbiguous.count(lower) != 0;
  if (!ambiguous) {
    double ignored = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), ignored);
    ambiguous = ec == std::errc() && ptr == s.data() + s.size();
  }
  if (ambiguous) out << YAML::DoubleQuoted;
  out << s;
}

void EmitFloats(YAML::Emitter& out, const std::vector<float>& values) {
  if (values.size() == 1) {
    out << FloatText(values[0]);
    return;
  }
  out << YAML::Flow << YAML::BeginSeq;
  for (float v : values) out << FloatText(v);
  out << YAML::EndSeq;
}

}  // namespace

int64_t ModelCard::input_width() const {
  int64_t width = 0;
  for (const auto& input : inputs) width += input.size;
  return width;
}

int64_t ModelCard::output_width() const { return static_cast<int64_t>(actions.size()); }

Result<ModelCard> ParseModelCard(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("model card: YAML syntax error: " + std::string(e.what()));
  }
  // Anything below should not throw once the type checks pass, but yaml-cpp conversions can;
  // keep its exceptions inside this module.
  try {
    return ParseCardNode(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("model card: " + std::string(e.what()));
  }
}

Result<ModelCard> LoadModelCard(const std::filesystem::path& card_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(card_file, ec)) {
    return NotFoundError("model card not found: " + card_file.string());
  }
  std::ifstream in(card_file, std::ios::binary);
  if (!in) return InternalError("cannot open model card " + card_file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return InternalError("cannot read model card " + card_file.string());
  Result<ModelCard> card = ParseModelCard(buffer.str());
  if (!card.ok()) {
    return Status(card.status().code(), card_file.string() + ": " + card.status().message());
  }
  return card;
}

std::string ModelCardToYaml(const ModelCard& card) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  EmitString(out, card.name);
  out << YAML::Key << "version" << YAML::Value << card.version;
  if (!card.description.empty()) {
    out << YAML::Key << "description" << YAML::Value << YAML::DoubleQuoted << card.description;
  }

  out << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  for (const auto& [format, file] : card.files) {
    out << YAML::Key << std::string(FormatToName(format)) << YAML::Value;
    EmitString(out, file);
  }
  out << YAML::EndMap;

  out << YAML::Key << "input" << YAML::Value << YAML::BeginSeq;
  for (const auto& input : card.inputs) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    EmitString(out, input.name);
    out << YAML::Key << "size" << YAML::Value << input.size;
    const Preprocess& pre = input.preprocess;
    const bool has_pre = !pre.mean.empty() || !pre.std.empty() || !pre.scale.empty() ||
                         !pre.offset.empty() || pre.clip_low.has_value();
    if (has_pre) {
      out << YAML::Key << "preprocess" << YAML::Value << YAML::BeginMap;
      const std::pair<const char*, const std::vector<float>*> vectors[] = {
          {"mean", &pre.mean}, {"std", &pre.std}, {"scale", &pre.scale}, {"offset", &pre.offset}};
      for (const auto& [key, values] : vectors) {
        if (values->empty()) continue;
        out << YAML::Key << key << YAML::Value;
        EmitFloats(out, *values);
      }
      if (pre.clip_low.has_value() && pre.clip_high.has_value()) {
        out << YAML::Key << "clip" << YAML::Value << YAML::Flow << YAML::BeginSeq
            << FloatText(*pre.clip_low) << FloatText(*pre.clip_high) << YAML::EndSeq;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "output" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "actions" << YAML::Value << YAML::BeginSeq;
  for (const auto& action : card.actions) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    EmitString(out, action.name);
    out << YAML::Key << "low" << YAML::Value << FloatText(action.low);
    out << YAML::Key << "high" << YAML::Value << FloatText(action.high);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  if (!card.log_std.empty()) {
    out << YAML::Key << "log_std" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (float v : card.log_std) out << FloatText(v);
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;

  if (!card.artifact_hashes.empty()) {
    out << YAML::Key << "artifact_hashes" << YAML::Value << YAML::BeginMap;
    for (const auto& [file, hash] : card.artifact_hashes) {
      out << YAML::Key;
      EmitString(out, file);
      out << YAML::Value << hash;
    }
    out << YAML::EndMap;
  }
  if (!card.info.empty()) {
    out << YAML::Key << "info" << YAML::Value << YAML::BeginMap;
    for (const auto& [key, value] : card.info) {
      out << YAML::Key;
      EmitString(out, key);
      out << YAML::Value << YAML::DoubleQuoted << value;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace brainstem
