#include "transport/http/ocr_model_json.h"

#include "common/json_writer.h"

namespace brainstem {

void AppendOcrCardJson(const OcrCard& card, std::string* out) {
  auto field = [out](const char* key, const std::string& value) {
    out->append(",\"").append(key).append("\":");
    AppendJsonString(out, value);
  };
  out->append("{\"kind\":\"ocr\"");
  field("name", card.name);
  field("version", card.version);
  field("description", card.description);
  out->append(",\"engine\":{\"name\":");
  AppendJsonString(out, card.engine);
  out->append(",\"mode\":");
  AppendJsonString(out, card.engine_mode);
  out->append("}");
  field("language", card.language);
  out->append(",\"traineddata\":{\"file\":");
  AppendJsonString(out, card.traineddata_file);
  out->append(",\"sha256\":");
  AppendJsonString(out, card.traineddata_sha256);
  out->append(",\"source\":");
  AppendJsonString(out, card.traineddata_source);
  out->append("},\"segmentation\":{\"mode\":");
  AppendJsonString(out, card.segmentation);
  out->append(",\"line_psm\":" + std::to_string(card.line_psm));
  out->append(",\"whole_psm\":" + std::to_string(card.whole_psm));
  out->append(",\"polarity_fix\":").append(card.polarity_fix ? "true" : "false");
  out->append(",\"line_width_scale\":");
  AppendJsonNumber(out, card.line_width_scale);
  out->append("},\"tile_size\":" + std::to_string(card.tile_size));
  out->append(",\"limits\":{\"max_image_pixels\":" + std::to_string(card.max_image_pixels));
  out->append(",\"max_frame_dimension\":" + std::to_string(card.max_frame_dimension));
  out->append(",\"max_answer_bytes\":" + std::to_string(card.max_answer_bytes));
  out->append("},\"info\":");
  AppendJsonStringMap(out, card.info);
  out->append("}");
}

void AppendLoadedOcrModelJson(const OcrModel& model, std::string* out) {
  out->append("{\"name\":");
  AppendJsonString(out, model.name);
  out->append(",\"version\":");
  AppendJsonString(out, model.version);
  out->append(",\"language\":");
  AppendJsonString(out, model.effective.language);
  out->append(",\"source\":");
  out->append(model.card.has_value() ? "\"card\"" : "\"built-in\"");
  out->append(",\"hash_verified\":").append(model.hash_verified ? "true" : "false");
  out->append(",\"traineddata\":");
  AppendJsonString(out, model.traineddata.string());
  out->append(",\"hash_problem\":");
  AppendJsonString(out, model.hash_problem);
  out->append(",\"card\":");
  if (model.card.has_value()) {
    AppendOcrCardJson(*model.card, out);
  } else {
    out->append("null");
  }
  out->append("}");
}

}  // namespace brainstem
