#include "instaface/graph/validation.h"

#include <cctype>
#include <limits>
#include <string>

namespace instaface::graph {

using common::Status;
using common::StatusOr;
using json = nlohmann::json;

Status ValidateType(std::string_view type) {
  if (type.empty() || type.size() > 10) {
    return Status::InvalidArgument("type must be 1 to 10 characters, got " +
                                   std::to_string(type.size()));
  }
  for (char c : type) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("type may contain only A-Z, a-z, 0-9, '_' and '-'");
  }
  return Status();
}

namespace {

// Decimal digits only, at most max_digits, value <= max. Writes the value to *out.
bool ParseDecimal(std::string_view text, size_t max_digits, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > max_digits) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');  // 19 digits cannot overflow uint64
  }
  if (v > max) return false;
  *out = v;
  return true;
}

constexpr uint64_t kMaxId = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

}  // namespace

StatusOr<int64_t> ParseId(std::string_view text) {
  uint64_t v = 0;
  if (!ParseDecimal(text, 19, kMaxId, &v) || v == 0) {
    return Status::InvalidArgument("id must be an integer from 1 to 9223372036854775807");
  }
  return static_cast<int64_t>(v);
}

StatusOr<int64_t> ParseCount(std::string_view text) {
  uint64_t v = 0;
  if (!ParseDecimal(text, 10, std::numeric_limits<uint32_t>::max(), &v)) {
    return Status::InvalidArgument("count must be a non-negative integer");
  }
  return static_cast<int64_t>(v);
}

StatusOr<std::vector<int64_t>> IdsFromJson(const nlohmann::json& ids, size_t max_ids,
                                           std::string_view what) {
  const std::string name(what);
  if (!ids.is_array()) return Status::InvalidArgument(name + " must be a JSON array of ids");
  if (ids.size() > max_ids) {
    return Status::InvalidArgument(name + " has " + std::to_string(ids.size()) +
                                   " entries; at most " + std::to_string(max_ids) + " are allowed");
  }
  std::vector<int64_t> out;
  out.reserve(ids.size());
  for (size_t k = 0; k < ids.size(); ++k) {
    const nlohmann::json& id = ids[k];
    int64_t value = 0;
    if (id.is_number_unsigned()) {
      const uint64_t u = id.get<uint64_t>();
      value = u <= kMaxId ? static_cast<int64_t>(u) : 0;
    } else if (id.is_number_integer()) {
      value = id.get<int64_t>();
    }
    if (value <= 0) {
      return Status::InvalidArgument(name + "[" + std::to_string(k) +
                                     "] must be an integer from 1 to 9223372036854775807");
    }
    out.push_back(value);
  }
  return out;
}

Status ValidateAttributes(const nlohmann::json& attributes) {
  if (attributes.is_null() || attributes.is_object()) return Status();
  return Status::InvalidArgument(std::string("attributes must be a JSON object, got ") +
                                 attributes.type_name());
}

Status ValidateIdempotencyKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("Idempotency-Key must not be empty");
  if (key.size() > kMaxIdempotencyKeyLength) {
    return Status::InvalidArgument("Idempotency-Key is " + std::to_string(key.size()) +
                                   " characters long; at most " +
                                   std::to_string(kMaxIdempotencyKeyLength) + " are allowed");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c > 0x7e) {
      return Status::InvalidArgument("Idempotency-Key has a byte outside printable ASCII (" +
                                     std::to_string(c) + ") at offset " + std::to_string(i));
    }
  }
  return Status();
}

StatusOr<QueryParts> SplitQuery(const json& request) {
  if (!request.is_object()) {
    return Status::InvalidArgument(
        "query must be a JSON object {\"entities\": [ids], \"template\": {...}}");
  }
  QueryParts parts;
  for (auto it = request.begin(); it != request.end(); ++it) {
    std::string key = it.key();
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const json** slot = key == "entities"   ? &parts.entities
                        : key == "template" ? &parts.tmpl
                                            : nullptr;
    if (slot == nullptr) {
      return Status::InvalidArgument("query has an unknown key '" + it.key().substr(0, 32) +
                                     "' (expected entities and template)");
    }
    if (*slot != nullptr) return Status::InvalidArgument("query names '" + key + "' twice");
    *slot = &it.value();
  }
  if (parts.entities == nullptr) {
    return Status::InvalidArgument("query needs \"entities\", an array of entity ids");
  }
  return parts;
}

}  // namespace instaface::graph
