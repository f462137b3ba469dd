#include "bench/pca_rotation.h"

#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "faiss/VectorTransform.h"

namespace nestor::bench {

void RotateByTrainPca(client::FloatMatrix* train, client::FloatMatrix* test) {
  const auto start = std::chrono::steady_clock::now();
  const int d = static_cast<int>(train->cols);
  faiss::PCAMatrix transform(d, d, 0.0f, false);
  transform.train(train->rows, train->data.data());
  std::vector<float> rotated(train->data.size());
  transform.apply_noalloc(train->rows, train->data.data(), rotated.data());
  train->data = std::move(rotated);
  rotated.assign(test->data.size(), 0.0f);
  transform.apply_noalloc(test->rows, test->data.data(), rotated.data());
  test->data = std::move(rotated);
  std::printf("fashion-mnist-pca: PCA (FAISS PCAMatrix %d -> %d) learned on the train set "
              "and applied to train and test in %.1f s\n", d, d,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace nestor::bench
