// Memory and process hygiene for a device that holds images of people.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

#include "portcullis/status.h"

namespace portcullis::lane {

// Core dumps off for this process (setrlimit RLIMIT_CORE 0 and prctl PR_SET_DUMPABLE 0): a
// crash must not write a memory image full of frames to disk. Called first thing by the agent.
Status DisableCoreDumps();
// True when this process can no longer dump core (what the agent's health reports).
bool CoreDumpsDisabled();

// Overwrites the pixels with zeros (sodium_memzero; not optimised away) when this Mat is the only
// owner of its buffer, then releases it. A Mat sharing its buffer is only released.
void WipeMat(cv::Mat* mat);
// Overwrites a string's bytes with zeros and clears it.
void WipeString(std::string* bytes);

}  // namespace portcullis::lane
