// Writers of small vector files in the formats client/datasets.h reads, for tests.
#ifndef NESTOR_TESTS_CLIENT_TEST_FILES_H_
#define NESTOR_TESTS_CLIENT_TEST_FILES_H_

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nestor::client::testing {

inline std::string TempPath(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("nestor_client_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / (std::string(info ? info->name() : "x") + "_" + name)).string();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

template <typename T>
void Append(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// TEXMEX *vecs: per row int32 d then d values of T.
template <typename T>
std::string VecsBytes(const std::vector<std::vector<T>>& rows) {
  std::string out;
  for (const auto& row : rows) {
    Append<int32_t>(&out, static_cast<int32_t>(row.size()));
    for (T v : row) Append<T>(&out, v);
  }
  return out;
}

// NumPy v1 file of `values` with the given descr and shape text, e.g. "(2, 3)".
template <typename T>
std::string NpyBytes(const std::string& descr, const std::string& shape,
                     const std::vector<T>& values, const std::string& fortran = "False") {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + fortran +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  Append<uint16_t>(&out, static_cast<uint16_t>(header.size()));
  out += header;
  for (T v : values) Append<T>(&out, v);
  return out;
}

// idx3-ubyte: magic 0x00000803, then big-endian rows, height, width, then pixels.
inline std::string Idx3Bytes(uint32_t rows, uint32_t height, uint32_t width,
                             const std::vector<uint8_t>& pixels) {
  std::string out;
  auto big = [&](uint32_t v) {
    out += static_cast<char>(v >> 24);
    out += static_cast<char>(v >> 16);
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v);
  };
  big(0x00000803);
  big(rows);
  big(height);
  big(width);
  out.append(reinterpret_cast<const char*>(pixels.data()), pixels.size());
  return out;
}

}  // namespace nestor::client::testing

#endif  // NESTOR_TESTS_CLIENT_TEST_FILES_H_
