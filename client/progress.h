// A one-line progress bar on stderr: "label [=====>    ] done/total  rate/s  ETA".
// Drawn only when stderr is a terminal (or when forced), at most every 100 ms, so that
// logs and pipes stay clean.
#ifndef NESTOR_CLIENT_PROGRESS_H_
#define NESTOR_CLIENT_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace nestor::client {

struct ProgressOptions {
  // Draw even when stderr is not a terminal. Default false.
  bool force = false;
  // Where to draw. Default stderr.
  std::FILE* stream = stderr;
  // Unit shown after the rate, e.g. "vectors". Default "items".
  std::string unit = "items";
};

// Formats seconds as "12s", "3m04s" or "1h02m".
std::string FormatEta(double seconds);

// Thread safety: one thread at a time.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, ProgressOptions options = {});
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Records `n` more items done and redraws if 100 ms have passed.
  void Add(int64_t n);
  // Draws the final state and ends the line. Called by the destructor if needed.
  void Finish();

  bool enabled() const { return enabled_; }
  int64_t done() const { return done_; }
  // Items per second since construction.
  double Rate() const;

 private:
  void Draw();

  std::string label_;
  int64_t total_;
  ProgressOptions options_;
  bool enabled_;
  bool finished_ = false;
  int64_t done_ = 0;
  absl::Time start_;
  absl::Time last_draw_;
};

}  // namespace nestor::client

#endif  // NESTOR_CLIENT_PROGRESS_H_
