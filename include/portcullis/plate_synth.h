// Synthetic vehicle scenes with a plate of known text. They give the demo something real to read
// on a machine without any benchmark data, and give the tests images whose truth is known exactly.
#pragma once

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

#include "portcullis/plate.h"

namespace portcullis::plate {

struct SynthSpec {
  std::string text = "ABC1234";  // upper-case letters and digits
  std::string style = "us";      // "us" (white, dark text, state name), "eu" (blue EU strip),
                                 // "br" (Mercosur: blue band with "BRASIL")
  int image_width = 1280;
  int image_height = 720;
  int plate_width = 220;   // plate width in pixels before perspective
  float tilt_degrees = 0;  // in-plane rotation
  float yaw = 0;           // perspective skew in [-0.3, 0.3]
  float blur_sigma = 0;    // Gaussian blur of the whole scene
  float noise_sigma = 0;   // Gaussian pixel noise (0-255 scale)
  std::uint32_t seed = 1;  // background, car colour and placement; same seed, same image
};

struct SynthTruth {
  std::string text;
  Box box;  // axis-aligned plate box in the scene
};

// Renders a scene: a car-like body, bumper and the plate, on a textured background.
cv::Mat RenderVehicleScene(const SynthSpec& spec, SynthTruth* truth);

}  // namespace portcullis::plate
