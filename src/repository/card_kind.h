// CardKind: what a model_card.yaml describes, read from its optional top-level `kind` key
// before the card itself is parsed, so that the repository hands each card to the parser of
// its kind. A card without `kind` is a policy card (every card written before OCR joined the
// repository stays valid).
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace brainstem {

enum class CardKind {
  kPolicy,  // an RL policy: ModelCard (model_card.h), served by /predict
  kOcr,     // screen OCR: OcrCard (ocr_card.h), served by /v1/ocr
};

std::string_view CardKindName(CardKind kind);  // "policy" | "ocr"

// The kind named by the card's top-level `kind` key; kPolicy when the key is absent, or when
// the text is not a YAML mapping at all (the full parser then reports the syntax error with
// its usual message). Errors: kInvalidArgument naming `kind` when it is not a known kind.
Result<CardKind> ReadCardKind(const std::string& yaml_text);

}  // namespace brainstem
