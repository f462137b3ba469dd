// The HTTP endpoint that serves a Prometheus registry at /metrics.
//
// Built on civetweb (the server prometheus-cpp's own Exposer uses) with one handler for
// every path and method: GET /metrics answers the text exposition format 0.0.4, any other
// path 404 and any other method 405. prometheus::Exposer is not used because Debian's
// civetweb 1.15 crashes the process when it writes its own error pages (e.g. a GET of
// /favicon.ico); here civetweb never writes an error page itself.
#ifndef NESTOR_SERVER_METRICS_HTTP_H_
#define NESTOR_SERVER_METRICS_HTTP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

class CivetServer;
namespace prometheus {
class Registry;
}

namespace nestor::server {

class MetricsHandler;

// Thread safety: civetweb serves requests on its own worker threads; the registry is
// internally synchronized. Construction and destruction are not concurrent with anything.
class MetricsHttpServer {
 public:
  // Serves `registry` on `listen_address`:`port` (0 picks a free port) with
  // `num_threads` civetweb workers. UNAVAILABLE if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen_address, int port,
      std::shared_ptr<prometheus::Registry> registry, int num_threads = 2);

  // Stops serving. civetweb's listener notices the stop flag within milliseconds because
  // the destructor connects to it once (otherwise it waits for its 2 s poll timeout).
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound TCP port.
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;

  std::string listen_address_;
  int port_ = 0;
  std::unique_ptr<MetricsHandler> handler_;
  std::unique_ptr<CivetServer> server_;
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_METRICS_HTTP_H_
