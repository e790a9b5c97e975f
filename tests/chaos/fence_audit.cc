#include "fence_audit.h"

#include <charconv>
#include <chrono>
#include <fstream>
#include <optional>
#include <utility>

#include "support/subprocess.h"

namespace instaface::testing {
namespace {

// A table's name from "`db`.`table`" at the start of `rest`, if the database is `database`.
std::optional<std::string> TableOf(std::string_view rest, const std::string& database) {
  const std::string prefix = "`" + database + "`.`";
  if (rest.substr(0, prefix.size()) != prefix) return std::nullopt;
  rest.remove_prefix(prefix.size());
  const size_t end = rest.find('`');
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(rest.substr(0, end));
}

std::optional<uint64_t> Unsigned(const std::string& text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return value;
}

}  // namespace

FenceAuditor::FenceAuditor(std::string database, std::map<std::string, int> term_columns)
    : database_(std::move(database)), term_columns_(std::move(term_columns)) {}

void FenceAuditor::Feed(std::string_view line) {
  if (line.substr(0, 4) != "### ") {
    EndRow();  // a row's lines are contiguous
    return;
  }
  line.remove_prefix(4);
  Op op = Op::kNone;
  for (const auto& [prefix, kind] : {std::pair<std::string_view, Op>{"INSERT INTO ", Op::kInsert},
                                     {"UPDATE ", Op::kUpdate},
                                     {"DELETE FROM ", Op::kOther}}) {
    if (line.substr(0, prefix.size()) == prefix) {
      op = kind;
      line.remove_prefix(prefix.size());
      break;
    }
  }
  if (op != Op::kNone) {
    EndRow();
    std::optional<std::string> table = TableOf(line, database_);
    op_ = table ? op : Op::kOther;
    table_ = table.value_or("");
    in_set_ = op == Op::kInsert;  // an insert is all SET; an update is WHERE (old row), then SET
    return;
  }
  if (line == "SET") {
    in_set_ = true;
    return;
  }
  if (line == "WHERE") {
    in_set_ = false;
    return;
  }
  // "  @N=value"
  if (!in_set_ || op_ == Op::kNone || op_ == Op::kOther) return;
  const size_t at = line.find('@');
  const size_t eq = line.find('=');
  if (at == std::string_view::npos || eq == std::string_view::npos || eq < at) return;
  int column = 0;
  const auto [end, ec] = std::from_chars(line.data() + at + 1, line.data() + eq, column);
  if (ec != std::errc() || end != line.data() + eq) return;
  values_[column] = std::string(line.substr(eq + 1));
}

void FenceAuditor::Finish() { EndRow(); }

void FenceAuditor::EndRow() {
  const Op op = std::exchange(op_, Op::kNone);
  std::map<int, std::string> values = std::exchange(values_, {});
  in_set_ = false;
  if (op != Op::kInsert && op != Op::kUpdate) return;
  if (table_ == "fence") {
    if (std::optional<uint64_t> term = Unsigned(values[2])) {
      ++result_.fence_changes;
      fence_ = *term;
      if (fence_ > result_.highest_fence) result_.highest_fence = fence_;
    }
    return;
  }
  auto audited = term_columns_.find(table_);
  if (audited == term_columns_.end() || op != Op::kInsert) return;
  ++result_.rows;
  std::optional<uint64_t> term = Unsigned(values[audited->second]);
  if (!term) {
    ++result_.without_term;
    return;
  }
  if (*term == fence_) return;
  ++(*term < fence_ ? result_.below_fence : result_.above_fence);
  if (result_.first_violation.empty()) {
    result_.first_violation = "a row of " + table_ + " at term " + std::to_string(*term) +
                              " committed while the fence stood at " + std::to_string(fence_);
  }
}

bool AuditBinlog(const std::vector<std::string>& files, const std::string& scratch_dir,
                 FenceAuditor& auditor, std::string* error) {
  if (files.empty()) {
    if (error) *error = "no binary log files (is the server running with --log-bin?)";
    return false;
  }
  SubprocessOptions options;
  options.argv = {"mariadb-binlog", "--no-defaults", "--base64-output=decode-rows", "--verbose"};
  options.argv.insert(options.argv.end(), files.begin(), files.end());
  options.stdout_path = scratch_dir + "/binlog.txt";
  options.stderr_path = scratch_dir + "/binlog.err";
  Subprocess decode(options);
  std::optional<ExitStatus> status;
  if (decode.ok()) status = decode.Wait(std::chrono::minutes(10));
  if (!status || !status->success()) {
    if (error) {
      *error = "mariadb-binlog: " +
               (!decode.ok() ? decode.error()
                : status     ? status->ToString() + ": " + ReadFileOrEmpty(options.stderr_path)
                             : std::string("timed out"));
    }
    return false;
  }
  std::ifstream in(options.stdout_path);
  for (std::string line; std::getline(in, line);) auditor.Feed(line);
  auditor.Finish();
  return true;
}

}  // namespace instaface::testing
