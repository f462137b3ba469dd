// nestor-server: parses the configuration, serves until SIGTERM/SIGINT, then shuts down
// gracefully (saving every index to data_dir) and exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "server/config.h"
#include "server/server.h"

int main(int argc, char** argv) {
  // Block the stop signals in every thread (gRPC's and civetweb's threads inherit this
  // mask) and take them synchronously below with sigwait: no async signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<nestor::server::CommandLine> command_line =
      nestor::server::ParseCommandLine(argc, argv);
  if (!command_line.ok()) {
    std::cerr << "nestor-server: " << command_line.status().message() << "\n"
              << "Run with --help for the flags." << std::endl;
    return 2;
  }
  if (command_line->exit_code.has_value()) return *command_line->exit_code;

  absl::StatusOr<std::unique_ptr<nestor::server::NestorServer>> server =
      nestor::server::NestorServer::Create(command_line->config);
  if (!server.ok()) {
    std::cerr << "nestor-server: cannot start: " << server.status() << std::endl;
    return 1;
  }
  const std::string& address = command_line->config.listen_address();
  if (!command_line->ready_file.empty()) {
    absl::Status written = nestor::server::WriteReadyFile(
        command_line->ready_file, (*server)->grpc_port(), (*server)->metrics_port());
    if (!written.ok()) {
      std::cerr << "nestor-server: " << written << std::endl;
      (*server)->Shutdown().IgnoreError();
      return 1;
    }
  }
  std::cerr << "nestor-server listening on " << address << ":" << (*server)->grpc_port()
            << ", metrics on http://" << address << ":" << (*server)->metrics_port()
            << "/metrics" << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "nestor-server: signal " << signal_number
            << " received, shutting down (saving indexes to "
            << command_line->config.data_dir() << ")" << std::endl;
  absl::Status stopped = (*server)->Shutdown();
  if (!stopped.ok()) {
    std::cerr << "nestor-server: shutdown: " << stopped << std::endl;
    return 1;
  }
  if (!command_line->ready_file.empty()) {
    // A stale ready file would tell the next reader that a stopped server is serving.
    std::remove(command_line->ready_file.c_str());
  }
  std::cerr << "nestor-server: stopped" << std::endl;
  return 0;
}
