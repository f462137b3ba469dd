// The one adapter between Nestor and FAISS: k-means and PCA training. FAISS throws; this file
// catches and returns absl::Status, and no other file includes a FAISS header.
#ifndef NESTOR_INDEX_FAISS_KMEANS_H_
#define NESTOR_INDEX_FAISS_KMEANS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace nestor {

struct KMeansOptions {
  // Centroids to train, >= 1 and <= the number of points.
  int num_clusters = 1;
  // Lloyd iterations, >= 1.
  int iterations = 20;
  uint64_t seed = 1234;
  // Spherical k-means: points are assigned by inner product and centroids are
  // L2-normalized after each update (pass unit-norm points).
  bool spherical = false;
};

// Trains k-means (Lloyd's algorithm; FAISS faiss::Clustering, whose assignment step is a
// BLAS GEMM) on `num_points` points of `dimension` floats, row-major, contiguous.
// Uses every point given: the caller samples. Returns num_clusters * dimension floats.
// INVALID_ARGUMENT for bad sizes; INTERNAL if FAISS fails. FAISS's OpenMP loops run on
// the calling thread only; the GEMMs inside are threaded by OpenBLAS.
// Thread safety: may be called concurrently from several threads.
absl::StatusOr<std::vector<float>> TrainKMeans(const float* points, size_t num_points,
                                               int dimension, const KMeansOptions& options);

// Learns a PCA rotation (FAISS faiss::PCAMatrix, eigen-decomposition of the covariance
// of the centred points) on `num_points` >= 1 points of `dimension` floats, row-major,
// contiguous. Returns dimension x dimension floats, row-major: row i is the i-th principal
// axis (decreasing variance), rows orthonormal, so y = R x is a rotation (not centred:
// distances, inner products and norms are preserved). With fewer points than dimensions
// the axes FAISS cannot determine are completed to an orthonormal basis (Gram-Schmidt).
// INVALID_ARGUMENT for bad sizes; INTERNAL if FAISS fails.
// Thread safety: may be called concurrently from several threads.
absl::StatusOr<std::vector<float>> TrainPcaRotation(const float* points, size_t num_points,
                                                    int dimension);

}  // namespace nestor

#endif  // NESTOR_INDEX_FAISS_KMEANS_H_
