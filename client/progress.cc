#include "client/progress.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"

namespace nestor::client {

std::string FormatEta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return absl::StrFormat("%ds", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

ProgressBar::ProgressBar(std::string label, int64_t total, ProgressOptions options)
    : label_(std::move(label)),
      total_(total),
      options_(std::move(options)),
      enabled_(options_.force || isatty(fileno(options_.stream)) == 1),
      start_(absl::Now()),
      last_draw_(absl::InfinitePast()) {}

ProgressBar::~ProgressBar() { Finish(); }

double ProgressBar::Rate() const {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  return seconds > 0 ? done_ / seconds : 0.0;
}

void ProgressBar::Add(int64_t n) {
  done_ += n;
  if (!enabled_) return;
  const absl::Time now = absl::Now();
  if (now - last_draw_ >= absl::Milliseconds(100)) {
    last_draw_ = now;
    Draw();
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  Draw();
  std::fputc('\n', options_.stream);
  std::fflush(options_.stream);
}

void ProgressBar::Draw() {
  constexpr int kWidth = 30;
  const double fraction =
      total_ > 0 ? std::clamp(static_cast<double>(done_) / total_, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(kWidth, ' ');
  std::fill(bar.begin(), bar.begin() + filled, '=');
  if (filled < kWidth) bar[filled] = '>';
  const double rate = Rate();
  const double eta = rate > 0 ? (total_ - done_) / rate : -1;
  std::fprintf(options_.stream, "\r%s [%s] %lld/%lld %3.0f%%  %.0f %s/s  ETA %s\x1b[K",
               label_.c_str(), bar.c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), fraction * 100, rate, options_.unit.c_str(),
               FormatEta(eta).c_str());
  std::fflush(options_.stream);
}

}  // namespace nestor::client
