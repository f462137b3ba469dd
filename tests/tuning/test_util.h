// Traces of the seeded IVF simulation (ivf_simulation.h) for the tuning tests, built
// through tuning/trace.h; the simulation itself stays independent of tuning/.
#ifndef NESTOR_TESTS_TUNING_TEST_UTIL_H_
#define NESTOR_TESTS_TUNING_TEST_UTIL_H_

#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/tuning/ivf_simulation.h"
#include "tuning/trace.h"

namespace nestor::tuning::testing {

// The trace of `sim`'s search: its partition assignment, centroid orders, approximate
// keys and true neighbours. k, num_partitions and dimension come from `sim`; the other
// fields of `options` (max_partitions, shortlist_dim) are kept.
inline absl::StatusOr<Trace> SimulatedTrace(const IvfSimulation& sim,
                                            TraceOptions options = {}) {
  options.k = sim.k;
  options.num_partitions = sim.num_partitions;
  options.dimension = sim.dimension;
  return BuildTrace(options, sim.partition_of, sim.centroid_order,
                    static_cast<size_t>(sim.num_partitions), sim.approx_keys,
                    sim.true_neighbors);
}

// SimulatedTrace(sim, options), expecting OK; an empty Trace on error.
inline Trace TraceOf(const IvfSimulation& sim, TraceOptions options = {}) {
  absl::StatusOr<Trace> trace = SimulatedTrace(sim, options);
  EXPECT_THAT(trace, ::nestor::testing::IsOk());
  return trace.ok() ? *std::move(trace) : Trace();
}

}  // namespace nestor::tuning::testing

#endif  // NESTOR_TESTS_TUNING_TEST_UTIL_H_
