#include "index/faiss_kmeans.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <omp.h>

#include <cmath>
#include <exception>
#include <limits>

#include "absl/strings/str_cat.h"

namespace nestor {
namespace {

// Runs FAISS's OpenMP regions on the calling thread only, for the current scope. The
// heavy part of k-means is the BLAS GEMM of the assignment step, which OpenBLAS threads
// on its own; idle OpenMP workers spin-waiting next to OpenBLAS's threads made training
// 10-20x slower on small, shared machines. omp_set_num_threads only changes the calling
// thread's setting, so concurrent callers are unaffected.
class SingleThreadedOpenMpScope {
 public:
  SingleThreadedOpenMpScope() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThreadedOpenMpScope() { omp_set_num_threads(saved_); }
  SingleThreadedOpenMpScope(const SingleThreadedOpenMpScope&) = delete;
  SingleThreadedOpenMpScope& operator=(const SingleThreadedOpenMpScope&) = delete;

 private:
  int saved_;
};

}  // namespace

absl::StatusOr<std::vector<float>> TrainKMeans(const float* points, size_t num_points,
                                               int dimension, const KMeansOptions& options) {
  if (dimension < 1 || options.num_clusters < 1 || options.iterations < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k-means needs dimension, num_clusters and iterations >= 1, got ", dimension, ", ",
        options.num_clusters, ", ", options.iterations));
  }
  if (num_points < static_cast<size_t>(options.num_clusters)) {
    return absl::InvalidArgumentError(absl::StrCat("k-means needs at least ",
                                                   options.num_clusters, " points, got ",
                                                   num_points));
  }
  SingleThreadedOpenMpScope omp_scope;
  try {
    faiss::ClusteringParameters params;
    params.niter = options.iterations;
    params.nredo = 1;
    params.verbose = false;
    params.spherical = options.spherical;
    params.seed = static_cast<int>(options.seed ^ (options.seed >> 32));
    // The caller already sampled: keep FAISS from subsampling again or warning about
    // few points per centroid.
    params.min_points_per_centroid = 1;
    params.max_points_per_centroid = std::numeric_limits<int>::max() / 2;
    faiss::Clustering clustering(dimension, options.num_clusters, params);
    if (options.spherical) {
      faiss::IndexFlatIP assigner(dimension);
      clustering.train(static_cast<faiss::Index::idx_t>(num_points), points, assigner);
    } else {
      faiss::IndexFlatL2 assigner(dimension);
      clustering.train(static_cast<faiss::Index::idx_t>(num_points), points, assigner);
    }
    return std::move(clustering.centroids);
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS k-means failed: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("k-means failed: ", e.what()));
  }
}

absl::StatusOr<std::vector<float>> TrainPcaRotation(const float* points, size_t num_points,
                                                    int dimension) {
  if (dimension < 1 || num_points < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PCA needs dimension and num_points >= 1, got ", dimension, ", ", num_points));
  }
  SingleThreadedOpenMpScope omp_scope;
  std::vector<float> rotation;
  try {
    faiss::PCAMatrix pca(dimension, dimension, /*eigen_power=*/0.0f, /*random_rotation=*/false);
    pca.train(static_cast<faiss::Index::idx_t>(num_points), points);
    rotation.assign(pca.A.begin(), pca.A.end());
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS PCA training failed: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("PCA training failed: ", e.what()));
  }
  const size_t d = static_cast<size_t>(dimension);
  if (rotation.size() != d * d) {
    return absl::InternalError(absl::StrCat("FAISS PCA returned ", rotation.size(),
                                            " coefficients, expected ", d * d));
  }
  if (num_points >= d) return rotation;
  // Too few points to determine every axis: re-orthonormalize (modified Gram-Schmidt in
  // double), replacing degenerate rows by the first standard basis vectors that are
  // independent of the rows kept.
  std::vector<double> basis(d * d);
  size_t kept = 0;
  size_t next_unit = 0;
  for (size_t i = 0; i < d; ++i) {
    std::vector<double> v(rotation.begin() + i * d, rotation.begin() + (i + 1) * d);
    for (int attempt = 0; attempt <= dimension; ++attempt) {
      for (size_t b = 0; b < kept; ++b) {
        double dot = 0;
        for (size_t j = 0; j < d; ++j) dot += v[j] * basis[b * d + j];
        for (size_t j = 0; j < d; ++j) v[j] -= dot * basis[b * d + j];
      }
      double norm = 0;
      for (double x : v) norm += x * x;
      norm = std::sqrt(norm);
      if (norm > 1e-3) {
        for (size_t j = 0; j < d; ++j) basis[kept * d + j] = v[j] / norm;
        ++kept;
        break;
      }
      v.assign(d, 0.0);
      v[next_unit++ % d] = 1.0;
    }
  }
  for (size_t i = 0; i < d * d; ++i) rotation[i] = static_cast<float>(basis[i]);
  return rotation;
}

}  // namespace nestor
