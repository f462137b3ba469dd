// `nestor-bench --mode tune`: the offline autotuner (tuning/autotuner.h; Sun, Guo & Kumar,
// "Automating Nearest Neighbor Search Configuration with Constrained Optimization",
// ICLR 2023) beside an exhaustive grid search over the same query-time space and FAISS's
// own autotuning (faiss::ParameterSpace::explore on an equivalent IndexIVFFlat), on
// Fashion-MNIST, for target recalls@10 of 0.90, 0.95 and 0.99 (issue #5).
//
// Tuning queries are drawn from the train set (leave-one-out: each query's own vector is
// left out of its ground truth and results), disjoint from the held-out test queries on
// which every chosen setting is measured, one thread, one query at a time. The indexes
// (Nestor's and FAISS's) are trained without the tuning rows, which are added after
// training: rows the partitions were trained on look easier than unseen queries (0 to
// 0.003 recall@10 on Fashion-MNIST, 10,000 trained-on vs 10,000 held-out train rows of one
// index). The predicted recall is printed with its standard error over the tuning queries
// (about 0.003 for 1,000 queries at 0.95), the sampling error held-out recall is expected
// to differ by.
#ifndef NESTOR_BENCH_TUNE_BENCH_H_
#define NESTOR_BENCH_TUNE_BENCH_H_

namespace nestor::bench {

// Runs the tune comparison with its own flags (--help lists them); prints the table and
// the PASS/MISS checks and writes JSON operating points. Returns the process exit code:
// 0 done (whatever the checks say), 1 data or index error, 2 bad flags.
int RunTuneBench(int argc, char** argv);

}  // namespace nestor::bench

#endif  // NESTOR_BENCH_TUNE_BENCH_H_
