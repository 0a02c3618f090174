// portcullis: the command-line entry point. Each subsystem registers its own subcommands.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/access_command.h"
#include "cli/audit_command.h"
#include "cli/exit_codes.h"
#include "cli/face_command.h"
#include "cli/lane_command.h"
#include "cli/plate_command.h"
#include "cli/serve_command.h"
#include "cli/vault_command.h"
#include "common/blas_threads.h"
#include "common/huge_page_allocator.h"

namespace {

int Run(int argc, char** argv) {
  CLI::App app{"Portcullis: plate reading, face matching and a vault that keeps images safe"};
  // The BLAS kernels in use are part of what a speed report needs (src/common/blas_threads.h).
  const char* blas_core = portcullis::OpenBlasCoreName();
  app.set_version_flag("--version", std::string("portcullis 0.1.0 (OpenBLAS kernels: ") +
                                        (blas_core != nullptr ? blas_core : "none") + ")");
  app.require_subcommand(1);
  int exit_code = portcullis::cli::kExitOk;
  portcullis::cli::AddPlateCommands(app, &exit_code);
  portcullis::cli::AddFaceCommands(app, &exit_code);
  portcullis::cli::AddFaceGalleryCommands(app, &exit_code);
  portcullis::cli::AddAuditCommands(app, &exit_code);
  portcullis::cli::AddVaultCommands(app, &exit_code);
  portcullis::cli::AddServeCommands(app, &exit_code);
  portcullis::cli::AddAccessCommands(app, &exit_code);
  portcullis::cli::AddLaneCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // CLI11 returns 0 for --help/--version; everything else is a usage error.
    return code == 0 ? 0 : portcullis::cli::kExitUsage;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else: a CPU that this OpenBLAS does not know would otherwise run its
  // generic kernels (1.3-1.8x slower engines; src/common/blas_threads.h).
  portcullis::ReexecWithKnownOpenBlasKernels(argv);
  // A network's first run at a new input size faults in its buffers: large ones on huge pages,
  // freed memory kept for the next image (src/common/huge_page_allocator.h).
  portcullis::TuneMemoryForNetworks();
  // Engines report failures as Status; an exception here is a bug (or out of memory), and it
  // still gets a message and the documented exit code rather than an abort.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "portcullis: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "portcullis: internal error\n");
  }
  return portcullis::cli::kExitInternal;
}
