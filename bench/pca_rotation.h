// The fashion-mnist-pca dataset of nestor-bench (its --mode single/batch/both and --mode
// tune): Fashion-MNIST rotated by the principal axes of its train set, so coordinates come
// in order of decreasing variance and leading coordinates behave like Matryoshka prefixes
// (MRL, Kusupati et al. 2022) for an embedding that was not trained as one.
#ifndef NESTOR_BENCH_PCA_ROTATION_H_
#define NESTOR_BENCH_PCA_ROTATION_H_

#include "client/datasets.h"

namespace nestor::bench {

// Learns a PCA on `train` (FAISS PCAMatrix, d -> d, centred, no whitening) and applies it
// in place to `train` and `test` (row-major rows of the same d = train->cols coordinates).
// Centring and rotating preserve L2 distances, so exact neighbours at the full dimension
// are those of the original vectors (up to float rounding). Prints one line with the time
// taken. Errors: none for matrices of equal cols; FAISS's exceptions are not caught here.
void RotateByTrainPca(client::FloatMatrix* train, client::FloatMatrix* test);

}  // namespace nestor::bench

#endif  // NESTOR_BENCH_PCA_ROTATION_H_
