// Vault: composes the record store, the key provider, the retention rules and the audit log.
// The order of operations is the security argument, so it is spelled out at each step.
#include "portcullis/vault.h"

#include <algorithm>
#include <cstdlib>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "portcullis/envelope.h"
#include "portcullis/key_provider.h"
#include "vault/record_store.h"
#include "vault/retention.h"

namespace portcullis::vault {
namespace {

// Pages of this many records when walking a KEK's records (rotation, dry-run purge).
constexpr std::size_t kWalkPage = 1000;
// A batch at least this large is sealed on two threads (starting one costs ~50 us).
constexpr std::size_t kParallelSealRecords = 4;
constexpr std::size_t kParallelSealBytes = std::size_t{256} << 10;

// The audit log's result vocabulary: "ok", "denied" (refused before touching anything: no
// principal, role or purpose), "not_found", or "error:<code>" with a stable snake-case code.
std::string ResultOf(const Status& s, bool denied) {
  if (denied) return "denied";
  switch (s.code()) {
    case Status::Code::kOk:
      return "ok";
    case Status::Code::kNotFound:
      return "not_found";
    case Status::Code::kInvalidArgument:
      return "error:invalid_argument";
    case Status::Code::kIOError:
      return "error:io_error";
    case Status::Code::kCorruption:
      return "error:corruption";
    case Status::Code::kUnsupported:
      return "error:unsupported";
    case Status::Code::kResourceExhausted:
      return "error:resource_exhausted";
    case Status::Code::kInternal:
      return "error:internal";
  }
  return "error:internal";
}

Status CheckContext(const AccessContext& ctx) {
  if (ctx.principal.empty()) return Status::InvalidArgument("no principal: every access says who");
  if (ctx.role.empty()) return Status::InvalidArgument("no role: every access says in which role");
  if (ctx.purpose.empty()) return Status::InvalidArgument("no purpose: every access states why");
  return Status::Ok();
}

// The associated data of a body: its id and every piece of metadata stored in the clear next to
// it, so that a row whose expiry, type or labels were edited in the database no longer opens.
BlobContext ContextOf(const RecordMeta& meta) {
  BlobContext context;
  context.record_id = meta.id;
  context.metadata = {
      {"type", std::string(RecordTypeName(meta.type))},
      {"subject", std::string(SubjectCategoryName(meta.subject))},
      {"retention_class", meta.retention_class},
      {"content_type", meta.content_type},
      {"created_micros", std::to_string(meta.created_micros)},
      {"expires_micros", std::to_string(meta.expires_micros)},
      {"size", std::to_string(meta.size)},
  };
  for (const auto& [key, value] : meta.labels) context.metadata.emplace_back("label:" + key, value);
  return context;
}

std::string DefaultRetentionPath() {
  if (const char* dir = std::getenv("PORTCULLIS_DATA_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/retention.json";
  }
  return std::string(PORTCULLIS_DEFAULT_DATA_DIR) + "/retention.json";
}

// Rotated KEKs keep their bucket and gain a generation: "kek/plate/20261127" -> ".../r2" ->
// ".../r3".
std::string NextGeneration(const std::string& kek_id) {
  const std::size_t slash = kek_id.rfind('/');
  if (slash != std::string::npos && slash + 2 <= kek_id.size() && kek_id[slash + 1] == 'r') {
    const std::string digits = kek_id.substr(slash + 2);
    if (!digits.empty() &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return kek_id.substr(0, slash) + "/r" + std::to_string(std::stoull(digits) + 1);
    }
  }
  return kek_id + "/r2";
}

class VaultImpl final : public Vault {
 public:
  VaultImpl(std::unique_ptr<RecordStore> store, std::unique_ptr<KeyProvider> keys,
            RetentionPolicy policy, audit::AuditSink* audit, Env* env)
      : store_(std::move(store)),
        keys_(std::move(keys)),
        policy_(std::move(policy)),
        audit_(audit),
        env_(env) {}

  Status Put(const AccessContext& ctx, const NewRecord& record, RecordMeta* meta) override {
    std::vector<RecordMeta> metas;
    PORTCULLIS_RETURN_IF_ERROR(PutBatch(ctx, {record}, PutOptions{}, &metas));
    if (meta != nullptr) *meta = metas.front();
    return Status::Ok();
  }

  using Vault::PutBatch;
  Status PutBatch(const AccessContext& ctx, const std::vector<NewRecord>& records,
                  const PutOptions& options, std::vector<RecordMeta>* metas) override {
    std::vector<StoredRecord> stored;
    Status s = SealAll(ctx, records, &stored);
    // Nothing of a batch that failed to seal is stored: its audit event names no record.
    if (!s.ok()) stored.clear();
    if (s.ok() && !options.requires_record.empty() && !IsValidRecordId(options.requires_record)) {
      s = Status::InvalidArgument("requires_record: not a record id");
    }
    // 1. The rows are durable before the log says so, 2. the log is durable before the caller
    // hears "ok": an acknowledged put is both stored and on the record.
    if (s.ok()) s = store_->Put(stored, options.requires_record);
    std::vector<audit::AuditEvent> events;
    const std::int64_t now = env_->NowMicros();
    if (stored.empty()) {
      events.push_back(Event(ctx, "vault.put", "", s, now));
    } else {
      for (const StoredRecord& r : stored)
        events.push_back(Event(ctx, "vault.put", r.meta.id, s, now));
    }
    const Status logged = AuditBatch(events);
    PORTCULLIS_RETURN_IF_ERROR(s);
    PORTCULLIS_RETURN_IF_ERROR(logged);
    if (metas != nullptr) {
      metas->clear();
      for (StoredRecord& r : stored) metas->push_back(std::move(r.meta));
    }
    return Status::Ok();
  }

  Status Get(const AccessContext& ctx, const std::string& id, RecordMeta* meta,
             std::string* body) override {
    std::string plaintext;
    StoredRecord stored;
    Status s = CheckContext(ctx);
    if (s.ok()) s = store_->Get(id, &stored);
    if (s.ok()) {
      s = OpenRecord(*keys_, stored.kek_id, ContextOf(stored.meta),
                     SealedRecord{stored.wrapped_key, stored.sealed}, &plaintext);
      if (s.code() == Status::Code::kNotFound) {
        s = Status::NotFound("record " + id + " has been shredded (its key no longer exists)");
      }
    }
    // The read is logged before any byte of it is handed out; no log line, no data.
    PORTCULLIS_RETURN_IF_ERROR(AuditOne(Event(ctx, "vault.get", id, s, env_->NowMicros())));
    PORTCULLIS_RETURN_IF_ERROR(s);
    if (meta != nullptr) *meta = stored.meta;
    if (body != nullptr) *body = std::move(plaintext);
    return Status::Ok();
  }

  Status List(const AccessContext& ctx, const RecordFilter& filter, RecordPage* page) override {
    Status s = CheckContext(ctx);
    if (s.ok()) s = store_->List(filter, page);
    PORTCULLIS_RETURN_IF_ERROR(AuditOne(Event(ctx, "vault.list", "", s, env_->NowMicros())));
    return s;
  }

  Status Delete(const AccessContext& ctx, const std::string& id) override {
    Status s = CheckContext(ctx);
    if (s.ok()) s = store_->Delete(id);
    PORTCULLIS_RETURN_IF_ERROR(AuditOne(Event(ctx, "vault.delete", id, s, env_->NowMicros())));
    return s;
  }

  Status ListKeks(const AccessContext& ctx, std::vector<std::string>* kek_ids) override {
    Status s = CheckContext(ctx);
    if (s.ok()) s = store_->ListKekIds(kek_ids);
    PORTCULLIS_RETURN_IF_ERROR(AuditOne(Event(ctx, "vault.list_keks", "", s, env_->NowMicros())));
    return s;
  }

  Status Purge(const AccessContext& ctx, bool dry_run, PurgeReport* report) override {
    PurgeReport local;
    PurgeReport* out = report != nullptr ? report : &local;
    *out = PurgeReport{};
    out->dry_run = dry_run;
    const std::int64_t now = env_->NowMicros();
    Status s = CheckContext(ctx);
    if (s.ok()) s = PurgeKeks(dry_run, now, out);
    if (s.ok()) s = PurgeExpiredRows(dry_run, now, out);
    std::sort(out->records.begin(), out->records.end());
    out->records.erase(std::unique(out->records.begin(), out->records.end()), out->records.end());
    // One event per record shredded or deleted: breach scoping later needs to know exactly which
    // records stopped existing when, and on whose order.
    const std::string action = dry_run ? "vault.purge_dry_run" : "vault.purge";
    std::vector<audit::AuditEvent> events;
    events.push_back(Event(ctx, action, "", s, now));
    if (!dry_run) {
      for (const std::string& id : out->records) events.push_back(Event(ctx, action, id, s, now));
    }
    PORTCULLIS_RETURN_IF_ERROR(AuditBatch(events));
    return s;
  }

  Status Rotate(const AccessContext& ctx, const std::string& kek_id,
                RotateReport* report) override {
    RotateReport local;
    RotateReport* out = report != nullptr ? report : &local;
    // A copy on purpose: kek_id may alias report->new_kek, which is reset below.
    const std::string old_kek = kek_id;  // NOLINT(performance-unnecessary-copy-initialization)
    *out = RotateReport{};
    out->old_kek = old_kek;
    out->new_kek = NextGeneration(old_kek);
    Status s = CheckContext(ctx);
    if (s.ok()) s = RotateKek(old_kek, out->new_kek, &out->rewrapped);
    PORTCULLIS_RETURN_IF_ERROR(AuditOne(Event(ctx, "vault.rotate", "", s, env_->NowMicros())));
    return s;
  }

 private:
  audit::AuditEvent Event(const AccessContext& ctx, const std::string& action,
                          const std::string& id, const Status& s, std::int64_t now) const {
    audit::AuditEvent e;
    e.time_micros = now;
    e.principal = ctx.principal;
    e.role = ctx.role;
    e.purpose = ctx.purpose;
    e.action = action;
    e.record_id = id;
    e.result = ResultOf(s, !CheckContext(ctx).ok());
    return e;
  }

  Status AuditOne(const audit::AuditEvent& event) {
    const Status s = audit_->Append(event);
    return s.ok() ? s : s.WithContext("audit log");
  }
  Status AuditBatch(const std::vector<audit::AuditEvent>& events) {
    const Status s = audit_->AppendAll(events);
    return s.ok() ? s : s.WithContext("audit log");
  }

  // A KEK is created once per bucket; remembering which exist keeps the hot path off the token.
  Status EnsureKek(const std::string& kek_id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (known_keks_.count(kek_id) != 0) return Status::Ok();
    }
    PORTCULLIS_RETURN_IF_ERROR(keys_->EnsureKek(kek_id));
    std::lock_guard<std::mutex> lock(mu_);
    known_keks_.insert(kek_id);
    return Status::Ok();
  }

  Status SealAll(const AccessContext& ctx, const std::vector<NewRecord>& records,
                 std::vector<StoredRecord>* stored) {
    PORTCULLIS_RETURN_IF_ERROR(CheckContext(ctx));
    if (records.empty()) return Status::InvalidArgument("nothing to put");
    const std::int64_t now = env_->NowMicros();
    // Metadata, class, expiry and KEK first, on this thread: cheap, and EnsureKek may have to
    // create the bucket's KEK in the provider once.
    stored->assign(records.size(), StoredRecord{});
    std::size_t body_bytes = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const NewRecord& record = records[i];
      StoredRecord& r = (*stored)[i];
      const RetentionClass* cls = nullptr;
      PORTCULLIS_RETURN_IF_ERROR(policy_.ClassFor(record.type, record.subject, &cls));
      if (!record.id.empty() && !IsValidRecordId(record.id)) {
        return Status::InvalidArgument("record id " + record.id +
                                       " is not 32 lower-case hex digits");
      }
      r.meta.id = record.id.empty() ? NewRecordId() : record.id;
      r.meta.type = record.type;
      r.meta.subject = record.subject;
      r.meta.retention_class = cls->name;
      r.meta.content_type = record.content_type;
      r.meta.created_micros = now;
      r.meta.labels = record.labels;
      r.meta.size = record.body.size();
      PORTCULLIS_RETURN_IF_ERROR(policy_.ExpiryFor(cls->name, now, &r.meta.expires_micros));
      PORTCULLIS_RETURN_IF_ERROR(policy_.KekIdFor(cls->name, now, &r.kek_id));
      PORTCULLIS_RETURN_IF_ERROR(EnsureKek(r.kek_id));
      body_bytes += record.body.size();
    }
    // Then the costly part — a fresh data key per record, its wrap, the AEAD over the body — split
    // over two threads for a large batch: the AEAD is most of a put's CPU, and the providers
    // serialise their own calls (WrapKey is a few microseconds under their mutex).
    auto seal_range = [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        StoredRecord& r = (*stored)[i];
        SealedRecord sealed;
        PORTCULLIS_RETURN_IF_ERROR(
            SealRecord(*keys_, r.kek_id, ContextOf(r.meta), records[i].body, &sealed));
        r.wrapped_key = std::move(sealed.wrapped_key);
        r.sealed = std::move(sealed.blob);
        PORTCULLIS_RETURN_IF_ERROR(ValidateStoredRecord(r));
      }
      return Status::Ok();
    };
    const std::size_t n = records.size();
    if (n >= kParallelSealRecords && body_bytes >= kParallelSealBytes) {
      std::future<Status> other;
      try {
        other = std::async(std::launch::async, seal_range, n / 2, n);
      } catch (const std::system_error&) {
        return seal_range(0, n);  // no thread to be had: seal everything here
      }
      const Status mine = seal_range(0, n / 2);
      const Status theirs = other.get();
      return mine.ok() ? theirs : mine;
    }
    return seal_range(0, n);
  }

  Status RecordsOf(const std::string& kek_id, std::vector<std::string>* ids) {
    RecordFilter filter;
    filter.kek_id = kek_id;
    filter.limit = kWalkPage;
    while (true) {
      RecordPage page;
      PORTCULLIS_RETURN_IF_ERROR(store_->List(filter, &page));
      for (const RecordMeta& meta : page.records) ids->push_back(meta.id);
      if (page.next_cursor.empty()) return Status::Ok();
      filter.cursor = page.next_cursor;
    }
  }

  Status PurgeKeks(bool dry_run, std::int64_t now, PurgeReport* out) {
    // Candidates: KEKs rows still reference, and KEKs the provider holds that nothing references
    // any more (e.g. a purge that crashed between shredding and deleting).
    std::vector<std::string> referenced;
    std::vector<std::string> held;
    PORTCULLIS_RETURN_IF_ERROR(store_->ListKekIds(&referenced));
    PORTCULLIS_RETURN_IF_ERROR(keys_->ListKeks(&held));
    std::set<std::string> all(referenced.begin(), referenced.end());
    all.insert(held.begin(), held.end());
    const std::set<std::string> held_set(held.begin(), held.end());
    const std::vector<std::string> expired =
        policy_.ExpiredKeks(std::vector<std::string>(all.begin(), all.end()), now);
    for (const std::string& kek : expired) {
      out->keks.push_back(kek);
      if (dry_run) {
        PORTCULLIS_RETURN_IF_ERROR(RecordsOf(kek, &out->records));
        continue;
      }
      // Shred first: once the KEK is gone the rows (and every backup of them) are dead, so a
      // crash before the delete below leaves only undecryptable rows for the next purge.
      if (held_set.count(kek) != 0) {
        Status destroyed = keys_->DestroyKek(kek);
        if (!destroyed.ok() && destroyed.code() != Status::Code::kNotFound) return destroyed;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        known_keks_.erase(kek);
      }
      std::vector<std::string> deleted;
      PORTCULLIS_RETURN_IF_ERROR(store_->DeleteByKek(kek, &deleted));
      out->records.insert(out->records.end(), deleted.begin(), deleted.end());
    }
    return Status::Ok();
  }

  Status PurgeExpiredRows(bool dry_run, std::int64_t now, PurgeReport* out) {
    // A record expires at created + retention but its bucket's KEK lives until the whole bucket
    // has expired; the row goes at its own expiry so that nothing is served past it.
    if (!dry_run) {
      std::vector<std::string> deleted;
      PORTCULLIS_RETURN_IF_ERROR(store_->DeleteExpired(now, &deleted));
      out->records.insert(out->records.end(), deleted.begin(), deleted.end());
      return Status::Ok();
    }
    RecordFilter filter;
    filter.expires_before = now + 1;  // expires_micros <= now
    filter.limit = kWalkPage;
    while (true) {
      RecordPage page;
      PORTCULLIS_RETURN_IF_ERROR(store_->List(filter, &page));
      for (const RecordMeta& meta : page.records) out->records.push_back(meta.id);
      if (page.next_cursor.empty()) return Status::Ok();
      filter.cursor = page.next_cursor;
    }
  }

  Status RotateKek(const std::string& old_kek, const std::string& new_kek,
                   std::uint64_t* rewrapped) {
    std::vector<std::string> ids;
    PORTCULLIS_RETURN_IF_ERROR(RecordsOf(old_kek, &ids));
    if (ids.empty()) return Status::NotFound("no record is wrapped by KEK " + old_kek);
    PORTCULLIS_RETURN_IF_ERROR(keys_->EnsureKek(new_kek));
    std::vector<WrappedKeyUpdate> updates;
    for (const std::string& id : ids) {
      StoredRecord stored;
      PORTCULLIS_RETURN_IF_ERROR(store_->Get(id, &stored));
      WrappedKeyUpdate update;
      update.id = id;
      update.old_kek_id = old_kek;
      update.new_kek_id = new_kek;
      PORTCULLIS_RETURN_IF_ERROR(
          Rewrap(*keys_, old_kek, new_kek, stored.wrapped_key, &update.new_wrapped_key));
      updates.push_back(std::move(update));
    }
    std::vector<std::string> conflicts;
    PORTCULLIS_RETURN_IF_ERROR(store_->UpdateWrappedKeys(updates, &conflicts));
    *rewrapped = updates.size() - conflicts.size();
    // Only when nothing references the old KEK any more may it go; otherwise a concurrent writer
    // added a record under it and the next rotation picks that one up.
    std::uint64_t remaining = 0;
    PORTCULLIS_RETURN_IF_ERROR(store_->CountByKek(old_kek, &remaining));
    if (remaining == 0) {
      Status destroyed = keys_->DestroyKek(old_kek);
      if (!destroyed.ok() && destroyed.code() != Status::Code::kNotFound) return destroyed;
      std::lock_guard<std::mutex> lock(mu_);
      known_keks_.erase(old_kek);
    }
    return Status::Ok();
  }

  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<KeyProvider> keys_;
  RetentionPolicy policy_;
  audit::AuditSink* audit_;
  Env* env_;
  std::mutex mu_;
  std::set<std::string> known_keks_;
};

}  // namespace

Status Vault::Open(const VaultOptions& options, std::unique_ptr<Vault>* vault) {
  if (options.audit == nullptr) {
    return Status::InvalidArgument("a vault needs an audit log: every access is recorded");
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  RetentionPolicy policy;
  const std::string retention_path =
      options.retention_path.empty() ? DefaultRetentionPath() : options.retention_path;
  PORTCULLIS_RETURN_IF_ERROR(RetentionPolicy::Load(env, retention_path, &policy));
  std::unique_ptr<RecordStore> store;
  PORTCULLIS_RETURN_IF_ERROR(RecordStore::Open(options.store_uri, &store));
  PORTCULLIS_RETURN_IF_ERROR(store->Migrate());
  std::unique_ptr<KeyProvider> keys;
  PORTCULLIS_RETURN_IF_ERROR(
      OpenKeyProvider(options.key_uri, options.key_secret, options.key_options, &keys));
  *vault = std::make_unique<VaultImpl>(std::move(store), std::move(keys), std::move(policy),
                                       options.audit, env);
  return Status::Ok();
}

}  // namespace portcullis::vault
