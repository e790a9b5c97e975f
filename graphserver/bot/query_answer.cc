#include "query_answer.h"

namespace instaface::bot {

const nlohmann::json* QueryAnswerEntities(const nlohmann::json& answer) {
  if (answer.is_array()) return &answer;
  if (!answer.is_object()) return nullptr;
  auto entities = answer.find("entities");
  if (entities == answer.end() || !entities->is_array()) return nullptr;
  return &*entities;
}

}  // namespace instaface::bot
