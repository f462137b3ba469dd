// `nestor-bench --mode grpc`: what gRPC costs (issue #3), measured in one process on one
// index. A nestor server (server/server.h) is started in this process on 127.0.0.1 with an
// ephemeral port; the Fashion-MNIST train set is loaded and built through its gRPC API,
// as `nestor create/load/build` do. The same live index object is then searched two ways,
// alternately, for --rounds rounds:
//   in-process  Index::Search on batches of --batch_size queries with --threads threads
//               (exactly nestor-bench --mode batch --batch_size B), and one query at a time
//               on one thread (--mode single);
//   gRPC        FindNeighbors requests of --batch_size queries and of 1 query over a
//               loopback channel, sent by the same loop as `nestor bench`
//               (client/request_load.h), with 1 and with --concurrency requests in
//               flight; the server searches each batch with --threads search threads.
// Each round measures every variant once over the whole query set, and each ratio is
// gRPC QPS / in-process QPS of the same round, so load from other tenants, which moves
// both, mostly cancels; the summary gives the median over the rounds. Both paths return
// the same neighbours (checked: the recalls must be equal).
#ifndef NESTOR_BENCH_GRPC_BENCH_H_
#define NESTOR_BENCH_GRPC_BENCH_H_

namespace nestor::bench {

// Runs the comparison with its own flags (--help lists them); prints one line per round
// and the median ratios, and writes JSON operating points. Returns the process exit code:
// 0 done (whatever the ratios), 1 data, server or search error (or the two paths
// disagreeing), 2 bad flags.
int RunGrpcBench(int argc, char** argv);

}  // namespace nestor::bench

#endif  // NESTOR_BENCH_GRPC_BENCH_H_
