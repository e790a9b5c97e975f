// One GraphCluster for a whole test binary, started by GoogleTest before the first test and
// stopped after the last:
//
//   GraphCluster* cluster = nullptr;  // what the tests use
//   ::testing::Environment* const kCluster =
//       ::testing::AddGlobalTestEnvironment(new GraphClusterEnvironment(Options(), &cluster));
//
// A cluster that does not start fails the binary's first test with the cluster's logs.
#ifndef INSTAFACE_TESTS_GRAPHSERVER_E2E_GRAPH_CLUSTER_ENVIRONMENT_H_
#define INSTAFACE_TESTS_GRAPHSERVER_E2E_GRAPH_CLUSTER_ENVIRONMENT_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "graph_cluster.h"

namespace instaface::testing {

class GraphClusterEnvironment : public ::testing::Environment {
 public:
  // `*handle` is set to the running cluster, and back to null once it stops.
  GraphClusterEnvironment(GraphClusterOptions options, GraphCluster** handle)
      : options_(std::move(options)), handle_(handle) {}

  void SetUp() override {
    owned_ = std::make_unique<GraphCluster>(options_);
    std::string error;
    ASSERT_TRUE(owned_->Start(&error)) << error;
    *handle_ = owned_.get();
  }
  void TearDown() override {
    *handle_ = nullptr;
    owned_.reset();
  }

 private:
  const GraphClusterOptions options_;
  GraphCluster** const handle_;
  std::unique_ptr<GraphCluster> owned_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_GRAPHSERVER_E2E_GRAPH_CLUSTER_ENVIRONMENT_H_
