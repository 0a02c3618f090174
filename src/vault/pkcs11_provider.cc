// The PKCS#11 provider. Why CKM_AES_KEY_WRAP_PAD through C_WrapKey/C_UnwrapKey rather than
// CKM_AES_GCM through C_Encrypt: the KEK carries only CKA_WRAP/CKA_UNWRAP, so the token refuses
// to use it as a general encryption key; RFC 5649 is deterministic and needs no IV, so there is
// no nonce to manage or to get wrong across processes; and its parameters are a bare mechanism,
// which avoids the CK_GCM_PARAMS layout that differs between PKCS#11 header versions. The
// binding to the KEK comes from the key itself: a blob wrapped by another KEK fails RFC 5649's
// integrity check (Corruption).
#include "pkcs11_provider.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "keys_internal.h"

namespace portcullis::vault {
namespace {

constexpr unsigned char kWrapVersion = 0x02;  // 0x01 is the keyring's format
// Marks our KEKs (CKA_ID) so that other applications' keys on a shared token are never listed or
// destroyed by the vault.
constexpr char kKekMarker[] = "portcullis:kek:v1";

std::string RvName(CK_RV rv) {
  switch (rv) {
    case CKR_PIN_INCORRECT:
      return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED:
      return "CKR_PIN_LOCKED";
    case CKR_PIN_INVALID:
      return "CKR_PIN_INVALID";
    case CKR_PIN_LEN_RANGE:
      return "CKR_PIN_LEN_RANGE";
    case CKR_TOKEN_NOT_PRESENT:
      return "CKR_TOKEN_NOT_PRESENT";
    case CKR_SLOT_ID_INVALID:
      return "CKR_SLOT_ID_INVALID";
    case CKR_WRAPPED_KEY_INVALID:
      return "CKR_WRAPPED_KEY_INVALID";
    case CKR_WRAPPED_KEY_LEN_RANGE:
      return "CKR_WRAPPED_KEY_LEN_RANGE";
    case CKR_ENCRYPTED_DATA_INVALID:
      return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
      return "CKR_ENCRYPTED_DATA_LEN_RANGE";
    case CKR_MECHANISM_INVALID:
      return "CKR_MECHANISM_INVALID";
    case CKR_USER_NOT_LOGGED_IN:
      return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_PIN_NOT_INITIALIZED:
      return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_DEVICE_MEMORY:
      return "CKR_DEVICE_MEMORY";
    case CKR_HOST_MEMORY:
      return "CKR_HOST_MEMORY";
    case CKR_DEVICE_ERROR:
      return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_REMOVED:
      return "CKR_DEVICE_REMOVED";
    case CKR_TOKEN_WRITE_PROTECTED:
      return "CKR_TOKEN_WRITE_PROTECTED";
    case CKR_ATTRIBUTE_VALUE_INVALID:
      return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_TEMPLATE_INCONSISTENT:
      return "CKR_TEMPLATE_INCONSISTENT";
    default:
      break;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "CKR 0x%lx", static_cast<unsigned long>(rv));
  return buf;
}

// A loaded and initialised module. Modules are process-wide singletons in PKCS#11 (C_Initialize
// once per process), so they are loaded once per path and never unloaded.
struct Module {
  void* handle = nullptr;
  CK_FUNCTION_LIST_PTR fn = nullptr;
};

Status LoadModule(const std::string& path, CK_FUNCTION_LIST_PTR* fn) {
  static std::mutex mu;
  static std::map<std::string, Module>* modules = new std::map<std::string, Module>;
  std::lock_guard<std::mutex> guard(mu);
  auto it = modules->find(path);
  if (it != modules->end()) {
    *fn = it->second.fn;
    return Status::Ok();
  }
  if (::access(path.c_str(), F_OK) != 0) {
    return Status::NotFound("PKCS#11 module not found: " + path +
                            " (install softhsm2 or set PORTCULLIS_PKCS11_MODULE)");
  }
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return Status::Unsupported("cannot load PKCS#11 module " + path + ": " +
                               (err != nullptr ? err : "dlopen failed"));
  }
  auto* get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
  CK_FUNCTION_LIST_PTR list = nullptr;
  if (get_list == nullptr || get_list(&list) != CKR_OK || list == nullptr) {
    ::dlclose(handle);
    return Status::Unsupported(path + " is not a PKCS#11 module (no C_GetFunctionList)");
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = list->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    ::dlclose(handle);
    return Pkcs11Status(rv, "C_Initialize(" + path + ")");
  }
  modules->emplace(path, Module{handle, list});
  *fn = list;
  return Status::Ok();
}

std::string TrimLabel(const unsigned char* label, std::size_t size) {
  std::string s(reinterpret_cast<const char*>(label), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, void* value, std::size_t size) {
  CK_ATTRIBUTE a{};
  a.type = type;
  a.pValue = value;
  a.ulValueLen = size;
  return a;
}

class Pkcs11Provider final : public KeyProvider {
 public:
  Pkcs11Provider(CK_FUNCTION_LIST_PTR fn, std::string label, CK_SESSION_HANDLE session)
      : fn_(fn), label_(std::move(label)), session_(session) {}
  ~Pkcs11Provider() override { fn_->C_CloseSession(session_); }
  Pkcs11Provider(const Pkcs11Provider&) = delete;
  Pkcs11Provider& operator=(const Pkcs11Provider&) = delete;

  [[nodiscard]] std::string Describe() const override { return "pkcs11:" + label_; }

  Status EnsureKek(const std::string& kek_id) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateKekId(kek_id));
    std::lock_guard<std::mutex> guard(mu_);
    std::vector<CK_OBJECT_HANDLE> found;
    PORTCULLIS_RETURN_IF_ERROR(FindKeks(&kek_id, &found));
    if (!found.empty()) return Status::Ok();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    std::string label = kek_id;
    std::string marker = kKekMarker;
    CK_ATTRIBUTE tmpl[] = {
        Attr(CKA_CLASS, &cls, sizeof(cls)),          Attr(CKA_KEY_TYPE, &type, sizeof(type)),
        Attr(CKA_VALUE_LEN, &len, sizeof(len)),      Attr(CKA_TOKEN, &yes, sizeof(yes)),
        Attr(CKA_PRIVATE, &yes, sizeof(yes)),        Attr(CKA_SENSITIVE, &yes, sizeof(yes)),
        Attr(CKA_EXTRACTABLE, &no, sizeof(no)),      Attr(CKA_WRAP, &yes, sizeof(yes)),
        Attr(CKA_UNWRAP, &yes, sizeof(yes)),         Attr(CKA_ENCRYPT, &no, sizeof(no)),
        Attr(CKA_DECRYPT, &no, sizeof(no)),          Attr(CKA_SIGN, &no, sizeof(no)),
        Attr(CKA_VERIFY, &no, sizeof(no)),           Attr(CKA_DERIVE, &no, sizeof(no)),
        Attr(CKA_LABEL, label.data(), label.size()), Attr(CKA_ID, marker.data(), marker.size()),
    };
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    return Pkcs11Status(fn_->C_GenerateKey(session_, &mech, tmpl, std::size(tmpl), &key),
                        "C_GenerateKey(" + kek_id + ")");
  }

  Status WrapKey(const std::string& kek_id, const SecretBytes& data_key,
                 std::string* wrapped) override {
    wrapped->clear();
    if (data_key.size() != 32) return Status::InvalidArgument("data key must be 32 bytes");
    std::lock_guard<std::mutex> guard(mu_);
    std::vector<CK_OBJECT_HANDLE> found;
    PORTCULLIS_RETURN_IF_ERROR(FindKeks(&kek_id, &found));
    if (found.empty()) return Status::NotFound("no KEK '" + kek_id + "' on " + Describe());
    // The data key enters the token as a session object (gone when the session closes, destroyed
    // right after use) so that the token can wrap it with C_WrapKey.
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        Attr(CKA_CLASS, &cls, sizeof(cls)),
        Attr(CKA_KEY_TYPE, &type, sizeof(type)),
        Attr(CKA_TOKEN, &no, sizeof(no)),
        Attr(CKA_EXTRACTABLE, &yes, sizeof(yes)),
        Attr(CKA_SENSITIVE, &no, sizeof(no)),
        Attr(CKA_VALUE, const_cast<unsigned char*>(data_key.data()), data_key.size()),
    };
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    PORTCULLIS_RETURN_IF_ERROR(
        Pkcs11Status(fn_->C_CreateObject(session_, tmpl, std::size(tmpl), &obj), "C_CreateObject"));
    CK_MECHANISM mech{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
    CK_ULONG len = 0;
    CK_RV rv = fn_->C_WrapKey(session_, &mech, found.front(), obj, nullptr, &len);
    std::string out;
    if (rv == CKR_OK) {
      out.resize(1 + len);
      rv = fn_->C_WrapKey(session_, &mech, found.front(), obj,
                          reinterpret_cast<CK_BYTE_PTR>(out.data() + 1), &len);
      out.resize(1 + len);
    }
    fn_->C_DestroyObject(session_, obj);
    PORTCULLIS_RETURN_IF_ERROR(Pkcs11Status(rv, "C_WrapKey(" + kek_id + ")"));
    out[0] = static_cast<char>(kWrapVersion);
    *wrapped = std::move(out);
    return Status::Ok();
  }

  Status UnwrapKey(const std::string& kek_id, std::string_view wrapped,
                   SecretBytes* data_key) override {
    if (wrapped.size() != 1 + 40 || static_cast<unsigned char>(wrapped[0]) != kWrapVersion) {
      return Status::Corruption("wrapped key is not a PKCS#11 (RFC 5649) wrapped 32-byte key");
    }
    std::lock_guard<std::mutex> guard(mu_);
    std::vector<CK_OBJECT_HANDLE> found;
    PORTCULLIS_RETURN_IF_ERROR(FindKeks(&kek_id, &found));
    if (found.empty()) return Status::NotFound("no KEK '" + kek_id + "' on " + Describe());
    Status last;
    // Two processes racing through EnsureKek can leave two objects with one label; a key wrapped
    // by either must still unwrap (and DestroyKek destroys both).
    for (CK_OBJECT_HANDLE kek : found) {
      last = UnwrapWith(kek, kek_id, wrapped.substr(1), data_key);
      if (last.ok() || last.code() != Status::Code::kCorruption) return last;
    }
    return last;
  }

  Status DestroyKek(const std::string& kek_id) override {
    std::lock_guard<std::mutex> guard(mu_);
    std::vector<CK_OBJECT_HANDLE> found;
    PORTCULLIS_RETURN_IF_ERROR(FindKeks(&kek_id, &found));
    if (found.empty()) return Status::NotFound("no KEK '" + kek_id + "' on " + Describe());
    for (CK_OBJECT_HANDLE kek : found) {
      PORTCULLIS_RETURN_IF_ERROR(
          Pkcs11Status(fn_->C_DestroyObject(session_, kek), "C_DestroyObject(" + kek_id + ")"));
    }
    return Status::Ok();
  }

  Status ListKeks(std::vector<std::string>* kek_ids) override {
    kek_ids->clear();
    std::lock_guard<std::mutex> guard(mu_);
    std::vector<CK_OBJECT_HANDLE> found;
    PORTCULLIS_RETURN_IF_ERROR(FindKeks(nullptr, &found));
    for (CK_OBJECT_HANDLE obj : found) {
      CK_ATTRIBUTE attr = Attr(CKA_LABEL, nullptr, 0);
      PORTCULLIS_RETURN_IF_ERROR(
          Pkcs11Status(fn_->C_GetAttributeValue(session_, obj, &attr, 1), "C_GetAttributeValue"));
      std::string label(attr.ulValueLen, '\0');
      attr.pValue = label.data();
      PORTCULLIS_RETURN_IF_ERROR(
          Pkcs11Status(fn_->C_GetAttributeValue(session_, obj, &attr, 1), "C_GetAttributeValue"));
      label.resize(attr.ulValueLen);
      kek_ids->push_back(std::move(label));
    }
    std::sort(kek_ids->begin(), kek_ids->end());
    kek_ids->erase(std::unique(kek_ids->begin(), kek_ids->end()), kek_ids->end());
    return Status::Ok();
  }

 private:
  Status UnwrapWith(CK_OBJECT_HANDLE kek, const std::string& kek_id, std::string_view body,
                    SecretBytes* data_key) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        Attr(CKA_CLASS, &cls, sizeof(cls)),   Attr(CKA_KEY_TYPE, &type, sizeof(type)),
        Attr(CKA_TOKEN, &no, sizeof(no)),     Attr(CKA_EXTRACTABLE, &yes, sizeof(yes)),
        Attr(CKA_SENSITIVE, &no, sizeof(no)),
    };
    CK_MECHANISM mech{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    std::string copy(body);  // C_UnwrapKey takes a non-const pointer
    const CK_RV rv =
        fn_->C_UnwrapKey(session_, &mech, kek, reinterpret_cast<CK_BYTE_PTR>(copy.data()),
                         copy.size(), tmpl, std::size(tmpl), &obj);
    if (rv != CKR_OK) {
      Status s = Pkcs11Status(rv, "C_UnwrapKey(" + kek_id + ")");
      // SoftHSM reports a failed RFC 5649 integrity check as a generic failure.
      if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) {
        s = Status::Corruption("wrapped key does not unwrap under KEK '" + kek_id + "' (" +
                               RvName(rv) + ")");
      }
      return s;
    }
    SecretBytes key(32);
    CK_ATTRIBUTE value = Attr(CKA_VALUE, nullptr, 0);
    CK_RV get = fn_->C_GetAttributeValue(session_, obj, &value, 1);
    if (get == CKR_OK && value.ulValueLen == key.size()) {
      value.pValue = key.data();
      get = fn_->C_GetAttributeValue(session_, obj, &value, 1);
    } else if (get == CKR_OK) {
      fn_->C_DestroyObject(session_, obj);
      return Status::Corruption("unwrapped key has " + std::to_string(value.ulValueLen) +
                                " bytes, expected 32");
    }
    fn_->C_DestroyObject(session_, obj);
    PORTCULLIS_RETURN_IF_ERROR(Pkcs11Status(get, "C_GetAttributeValue(unwrapped key)"));
    *data_key = std::move(key);
    return Status::Ok();
  }

  // Our KEKs on the token: all of them, or those labelled *kek_id.
  Status FindKeks(const std::string* kek_id, std::vector<CK_OBJECT_HANDLE>* found) {
    found->clear();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    std::string marker = kKekMarker;
    std::string label = kek_id != nullptr ? *kek_id : std::string();
    std::vector<CK_ATTRIBUTE> tmpl = {
        Attr(CKA_CLASS, &cls, sizeof(cls)),
        Attr(CKA_TOKEN, &yes, sizeof(yes)),
        Attr(CKA_ID, marker.data(), marker.size()),
    };
    if (kek_id != nullptr) tmpl.push_back(Attr(CKA_LABEL, label.data(), label.size()));
    PORTCULLIS_RETURN_IF_ERROR(Pkcs11Status(
        fn_->C_FindObjectsInit(session_, tmpl.data(), tmpl.size()), "C_FindObjectsInit"));
    CK_OBJECT_HANDLE batch[64];
    Status s;
    while (true) {
      CK_ULONG n = 0;
      s = Pkcs11Status(fn_->C_FindObjects(session_, batch, std::size(batch), &n), "C_FindObjects");
      if (!s.ok() || n == 0) break;
      found->insert(found->end(), batch, batch + n);
    }
    const Status fin = Pkcs11Status(fn_->C_FindObjectsFinal(session_), "C_FindObjectsFinal");
    return s.ok() ? fin : s;
  }

  std::mutex mu_;  // a PKCS#11 session must not be used by two threads at once
  CK_FUNCTION_LIST_PTR fn_;
  std::string label_;
  CK_SESSION_HANDLE session_;
};

}  // namespace

Status Pkcs11Status(unsigned long rv, const std::string& what) {
  const std::string msg = what + ": " + RvName(rv);
  switch (rv) {
    case CKR_OK:
      return Status::Ok();
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      return Status::InvalidArgument("wrong PIN (" + msg + ")");
    case CKR_PIN_LOCKED:
      return Status::IOError(
          "token PIN is locked after too many wrong attempts; unlock it with the SO PIN (" + msg +
          ")");
    case CKR_USER_PIN_NOT_INITIALIZED:
      return Status::InvalidArgument("token user PIN not initialised (" + msg + ")");
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
    case CKR_DEVICE_REMOVED:
      return Status::NotFound("token not present (" + msg + ")");
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
      return Status::Corruption("wrapped key does not unwrap (" + msg + ")");
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_MEMORY:
      return Status::ResourceExhausted(msg);
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_WRITE_PROTECTED:
      return Status::IOError(msg);
    case CKR_MECHANISM_INVALID:
      return Status::Unsupported("token does not support the mechanism (" + msg + ")");
    default:
      return Status::Internal(msg);
  }
}

Status OpenPkcs11Provider(const std::string& token_label, const std::string& pin,
                          const Pkcs11Options& options, std::unique_ptr<KeyProvider>* provider) {
  provider->reset();
  PORTCULLIS_RETURN_IF_ERROR(EnsureSodium());
  if (token_label.empty()) return Status::InvalidArgument("pkcs11: empty token label");
  std::string module = options.module_path;
  if (module.empty()) {
    const char* env = std::getenv("PORTCULLIS_PKCS11_MODULE");
    module = (env != nullptr && *env != '\0') ? env : kDefaultPkcs11Module;
  }
  CK_FUNCTION_LIST_PTR fn = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(LoadModule(module, &fn));

  CK_ULONG count = 0;
  PORTCULLIS_RETURN_IF_ERROR(
      Pkcs11Status(fn->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList"));
  std::vector<CK_SLOT_ID> slots(count);
  if (count > 0) {
    PORTCULLIS_RETURN_IF_ERROR(
        Pkcs11Status(fn->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList"));
    slots.resize(count);
  }
  bool found = false;
  CK_SLOT_ID slot = 0;
  for (CK_SLOT_ID s : slots) {
    CK_TOKEN_INFO info{};
    if (fn->C_GetTokenInfo(s, &info) != CKR_OK) continue;
    if (TrimLabel(info.label, sizeof(info.label)) == token_label) {
      slot = s;
      found = true;
      break;
    }
  }
  if (!found) {
    return Status::NotFound("no PKCS#11 token labelled '" + token_label + "' in " + module);
  }
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  PORTCULLIS_RETURN_IF_ERROR(Pkcs11Status(
      fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session),
      "C_OpenSession(" + token_label + ")"));
  std::string pin_copy = pin;
  const CK_RV rv = fn->C_Login(session, CKU_USER,
                               reinterpret_cast<CK_UTF8CHAR_PTR>(pin_copy.data()), pin_copy.size());
  if (!pin_copy.empty()) sodium_memzero(pin_copy.data(), pin_copy.size());
  // Login state is per application and token in PKCS#11: a second provider on a token this
  // process is already logged in to gets CKR_USER_ALREADY_LOGGED_IN (documented limitation).
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
    fn->C_CloseSession(session);
    return Pkcs11Status(rv, "C_Login(" + token_label + ")").WithContext("pkcs11:" + token_label);
  }
  *provider = std::make_unique<Pkcs11Provider>(fn, token_label, session);
  return Status::Ok();
}

}  // namespace portcullis::vault
