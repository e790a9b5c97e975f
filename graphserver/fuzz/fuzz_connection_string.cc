// Fuzzes the connection string parser: any bytes must give a config or an error, never a crash;
// a parsed config must satisfy the parser's promises and survive a quote-everything round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "instaface/graphdb/connection_string.h"

namespace {

std::string Quoted(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using instaface::graphdb::ParseConnectionString;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = ParseConnectionString(text);
  if (!config.ok()) {
    if (config.status().message().find("valid keys are") == std::string::npos) std::abort();
    return 0;
  }
  if (config->server.empty() || config->database.empty() || config->user.empty() ||
      config->port == 0) {
    std::abort();
  }
  const std::string again =
      "server=" + Quoted(config->server) + ";port=" + std::to_string(config->port) +
      ";database=" + Quoted(config->database) + ";user=" + Quoted(config->user) +
      ";password=" + Quoted(config->password);
  auto reparsed = ParseConnectionString(again);
  if (!reparsed.ok() || reparsed->server != config->server || reparsed->port != config->port ||
      reparsed->database != config->database || reparsed->user != config->user ||
      reparsed->password != config->password) {
    std::abort();
  }
  return 0;
}
