#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace nestor::server {
namespace {

// Writes a whole HTTP/1.1 response; civetweb's own error pages are never involved.
bool Reply(mg_connection* conn, int code, const char* reason, const std::string& content_type,
           const std::string& body, bool send_body = true) {
  std::string response = absl::StrCat("HTTP/1.1 ", code, " ", reason,
                                      "\r\nContent-Type: ", content_type,
                                      "\r\nContent-Length: ", body.size(),
                                      "\r\nConnection: close\r\n\r\n");
  if (send_body) response += body;
  mg_write(conn, response.data(), response.size());
  return true;
}

bool MethodNotAllowed(mg_connection* conn) {
  return Reply(conn, 405, "Method Not Allowed", "text/plain; charset=utf-8",
               "only GET and HEAD of /metrics are served\n");
}

// Opens and closes one TCP connection to the listener (loopback for a wildcard address).
void Poke(const std::string& listen_address, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, listen_address.c_str(), &addr.sin_addr) != 1 ||
      addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::close(fd);
}

}  // namespace

// One handler for every path: civetweb routes "/" and everything below it here.
class MetricsHandler : public CivetHandler {
 public:
  explicit MetricsHandler(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)) {}

  bool handleGet(CivetServer*, mg_connection* conn) override { return Serve(conn, true); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return Serve(conn, false); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return MethodNotAllowed(conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return MethodNotAllowed(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override {
    return MethodNotAllowed(conn);
  }
  bool handleOptions(CivetServer*, mg_connection* conn) override {
    return MethodNotAllowed(conn);
  }
  bool handlePatch(CivetServer*, mg_connection* conn) override {
    return MethodNotAllowed(conn);
  }

 private:
  bool Serve(mg_connection* conn, bool send_body) {
    const mg_request_info* request = mg_get_request_info(conn);
    const char* uri = request->local_uri != nullptr ? request->local_uri : "";
    if (std::strcmp(uri, "/metrics") != 0 && std::strcmp(uri, "/metrics/") != 0) {
      return Reply(conn, 404, "Not Found", "text/plain; charset=utf-8",
                   "not found: metrics are served at /metrics\n", send_body);
    }
    const std::string body = prometheus::TextSerializer().Serialize(registry_->Collect());
    return Reply(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, send_body);
  }

  std::shared_ptr<prometheus::Registry> registry_;
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen_address, int port,
    std::shared_ptr<prometheus::Registry> registry, int num_threads) {
  std::unique_ptr<MetricsHttpServer> http(new MetricsHttpServer());
  const std::string bind = absl::StrCat(listen_address, ":", port);
  const std::vector<std::string> options = {"listening_ports", bind, "num_threads",
                                            std::to_string(num_threads)};
  try {  // civetweb reports bind failures by throwing: stop them here.
    http->server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", bind,
                     ": is the port in use, or the address not one of this machine's? (civetweb: ",
                     e.what(), ")"));
  }
  http->handler_ = std::make_unique<MetricsHandler>(std::move(registry));
  http->server_->addHandler("/", http->handler_.get());
  const std::vector<int> ports = http->server_->getListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics server on ", bind, " bound no port"));
  }
  http->port_ = ports.front();
  http->listen_address_ = listen_address;
  return http;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (server_ == nullptr) return;
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    server_->close();
    stopped = true;
  });
  while (!stopped) {
    Poke(listen_address_, port_);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopper.join();
}

}  // namespace nestor::server
