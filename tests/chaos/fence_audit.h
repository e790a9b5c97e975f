// FenceAudit: every commit checked against the fence at its place in the commit order. MariaDB
// writes a transaction to its binary log as it commits, so the log (ROW format) is the commit
// order; read in that order, the fence row's term is known at every commit, and every row the
// graph writes records the term of the leader that wrote it (leader_term). A row whose term is
// below the fence was committed by a deposed leader after its successor had raised the fence; a
// row above it was committed without its term's raise: both break the fence, and both count.
//
// FenceAuditor reads the text of `mariadb-binlog --base64-output=decode-rows --verbose`, line by
// line; AuditBinlog runs that over a server's binary log files.
//
// Thread safety: none.
#ifndef INSTAFACE_TESTS_CHAOS_FENCE_AUDIT_H_
#define INSTAFACE_TESTS_CHAOS_FENCE_AUDIT_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace instaface::testing {

struct FenceAuditResult {
  uint64_t fence_changes = 0;  // rows of the fence table written (its first insert, each raise)
  uint64_t rows = 0;           // rows of the audited tables inserted
  uint64_t below_fence = 0;
  uint64_t above_fence = 0;
  uint64_t without_term = 0;  // leader_term NULL: written by something other than the graph
  uint64_t highest_fence = 0;
  std::string first_violation;  // one example, for the report
};

class FenceAuditor {
 public:
  // `term_columns`: for each audited table, the 1-based position of its leader_term column (the
  // log names columns by position). The fence's term is its second column.
  FenceAuditor(std::string database, std::map<std::string, int> term_columns);

  void Feed(std::string_view line);
  // Ends the row being read (call after the last line).
  void Finish();
  const FenceAuditResult& result() const { return result_; }

 private:
  enum class Op { kNone, kInsert, kUpdate, kOther };
  void EndRow();

  const std::string database_;
  const std::map<std::string, int> term_columns_;
  FenceAuditResult result_;
  uint64_t fence_ = 0;
  Op op_ = Op::kNone;
  std::string table_;
  bool in_set_ = false;
  std::map<int, std::string> values_;  // the SET part of the row being read
};

// Runs mariadb-binlog over `files` (oldest first) into a file in `scratch_dir` and feeds every
// line to `auditor`. False with *error when the log cannot be read.
bool AuditBinlog(const std::vector<std::string>& files, const std::string& scratch_dir,
                 FenceAuditor& auditor, std::string* error);

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_CHAOS_FENCE_AUDIT_H_
