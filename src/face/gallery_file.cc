// Gallery files: the byte format of gallery_format.h written and read through Env.
#include <string>

#include "face/gallery_format.h"
#include "portcullis/face_gallery.h"

namespace portcullis::face {

Status SaveGalleryFile(Env* env, const std::string& path, const Gallery& gallery) {
  if (env == nullptr) return Status::InvalidArgument("null Env");
  std::string bytes;
  PORTCULLIS_RETURN_IF_ERROR(gallery.Serialize(&bytes));
  const Status s = env->WriteFileAtomic(path, bytes);
  internal::WipeString(&bytes);
  return s.ok() ? s : s.WithContext("saving gallery " + path);
}

Status LoadGalleryFile(Env* env, const std::string& path, const GalleryOptions& options,
                       std::unique_ptr<Gallery>* out, std::size_t max_bytes) {
  if (env == nullptr || out == nullptr) return Status::InvalidArgument("null Env or output");
  std::string bytes;
  Status s = env->ReadFile(path, max_bytes, &bytes);
  if (s.ok()) s = Gallery::Deserialize(bytes, options, out);
  internal::WipeString(&bytes);
  return s.ok() ? s : s.WithContext(path);
}

}  // namespace portcullis::face
