// `portcullis face ...`: the command-line face of the face engine (verify, eval). Later
// subcommands (`face enrol --gallery`, `face identify --gallery`) register on the same group via
// FaceCommandGroup and share OpenFaceEngine / LoadFaceImage.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "portcullis/face.h"
#include "portcullis/status.h"

namespace portcullis::cli {

// Engine flags shared by every face subcommand.
struct FaceEngineFlags {
  float threshold = 0;       // 0: the engine's calibrated default
  bool no_quality = false;   // report quality measures but never refuse
  bool no_upsample = false;  // FaceEngineOptions::upsample_small_images = false (ablation)
  int min_face_pixels = 0;   // FaceEngineOptions::min_face_pixels
  int jitter = 0;            // FaceEngineOptions::jitter
};
void AddFaceEngineFlags(CLI::App* cmd, FaceEngineFlags* flags);

// Opens the engine for the flags; prints the reason to stderr and returns the exit code on
// failure (kExitSetup for missing/corrupt models).
int OpenFaceEngine(const FaceEngineFlags& flags, std::unique_ptr<face::FaceEngine>* engine);

// Reads an image through the safe decoder.
Status LoadFaceImage(const std::string& path, cv::Mat* bgr);

// The JSON of one capture's quality measures (docs/face.md, "JSON output").
nlohmann::json CaptureToJson(const face::FaceCapture& capture);

// The "face" group, created once; Add*Commands of other helpers hang their subcommands on it.
CLI::App* FaceCommandGroup(CLI::App& app);

// Registers `face verify` and `face eval`; *exit_code is set when one of them ran.
void AddFaceCommands(CLI::App& app, int* exit_code);

// Registers `face enrol --gallery` and `face identify --gallery` (face_gallery_command.cc).
void AddFaceGalleryCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
