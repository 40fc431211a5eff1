#include "repository/card_kind.h"

#include <yaml-cpp/yaml.h>

namespace brainstem {

std::string_view CardKindName(CardKind kind) {
  switch (kind) {
    case CardKind::kPolicy:
      return "policy";
    case CardKind::kOcr:
      return "ocr";
  }
  return "unknown";
}

Result<CardKind> ReadCardKind(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception&) {
    // Not ours to report: the policy parser names the syntax error with line and column.
    return CardKind::kPolicy;
  }
  if (!root.IsMap()) return CardKind::kPolicy;
  const YAML::Node kind = root["kind"];
  if (!kind.IsDefined() || kind.IsNull()) return CardKind::kPolicy;
  if (!kind.IsScalar()) return InvalidArgumentError("model card: kind: must be a string");
  for (CardKind k : {CardKind::kPolicy, CardKind::kOcr}) {
    if (kind.Scalar() == CardKindName(k)) return k;
  }
  return InvalidArgumentError("model card: kind: unknown kind '" + kind.Scalar() +
                              "' (allowed: policy, ocr)");
}

}  // namespace brainstem
