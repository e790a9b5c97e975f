#include <gtest/gtest.h>

#include "instaface/runtime/node.h"

namespace instaface::runtime {
namespace {

NodeOptions Valid() {
  NodeOptions o;
  o.id = "a";
  o.cluster = "graph";
  o.secret = "k";
  o.listen_url = "ipc:///tmp/x";
  return o;
}

TEST(NodeOptionsTest, DefaultsAreValid) {
  const common::Status valid = ValidateNodeOptions(Valid());
  EXPECT_TRUE(valid.ok()) << valid.message();
}

TEST(NodeOptionsTest, EachBadSettingIsNamed) {
  struct Case {
    std::function<void(NodeOptions&)> change;
    std::string mentions;
  };
  const Case cases[] = {
      {[](NodeOptions& o) { o.id = ""; }, "node id"},
      {[](NodeOptions& o) { o.id = std::string(65, 'x'); }, "node id"},
      {[](NodeOptions& o) { o.cluster = ""; }, "cluster"},
      {[](NodeOptions& o) { o.secret = ""; }, "secret"},
      {[](NodeOptions& o) { o.cluster_size = 0; }, "cluster size"},
      {[](NodeOptions& o) { o.election_min = std::chrono::milliseconds(2000); }, "above"},
      {[](NodeOptions& o) { o.heartbeat = std::chrono::milliseconds(750); }, "heartbeat"},
      // 750 ms less 2 x 20 % is 450 ms of lease: a 500 ms heartbeat would let it lapse.
      {[](NodeOptions& o) { o.max_clock_drift_ppm = 200000; }, "below the lease (450 ms"},
      {[](NodeOptions& o) { o.max_clock_drift_ppm = kMaxClockDriftPpm + 1; }, "drift bound"},
      {[](NodeOptions& o) { o.listen_url = ""; }, "listen"},
      {[](NodeOptions& o) { o.static_peers["a"] = "ipc:///tmp/y"; }, "must not include"},
      {[](NodeOptions& o) { o.static_peers["b"] = ""; }, "no URL"},
  };
  for (const Case& c : cases) {
    NodeOptions o = Valid();
    c.change(o);
    const common::Status valid = ValidateNodeOptions(o);
    EXPECT_FALSE(valid.ok()) << c.mentions;
    EXPECT_NE(valid.message().find(c.mentions), std::string::npos)
        << "got '" << valid.message() << "'";
  }
}

}  // namespace
}  // namespace instaface::runtime
