// Helpers shared by the key providers (not part of the public API).
#pragma once

#include <string>

#include "portcullis/status.h"

namespace portcullis::vault {

// KEK ids are 1..200 printable ASCII characters without spaces ("kek/face-citizen/2026112703"),
// so they are safe as file records, PKCS#11 labels and log text.
Status ValidateKekId(const std::string& kek_id);

}  // namespace portcullis::vault
