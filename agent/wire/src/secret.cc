#include "instaface/wire/secret.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace instaface::wire {

common::StatusOr<std::string> LoadSecretFile(const std::string& path) {
  if (path.empty()) return common::Status::Error("no secret file given (--secret-file)");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return common::Status::Error("cannot read secret file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return common::Status::Error("cannot read secret file " + path);
  std::string secret = buffer.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) return common::Status::Error("secret file " + path + " is empty");
  return secret;
}

}  // namespace instaface::wire
