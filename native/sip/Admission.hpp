// Admission: who may start anything with this agent, decided per request before PJSIP's
// transaction layer spends memory on it (called by the message guard, loop thread).
//
//  - Source admission: an INVITE is admitted only from a trusted address (the registrars and
//    outbound proxies the daemon resolved, plus the address entries of calls.allow), unless the
//    policy admits any source or has From URI patterns (then the JS side checks the From URI).
//    Others get 403 Forbidden, before anything reveals which users exist.
//  - The Request-URI user must name an account: 404 Not Found otherwise.
//  - Per-source rate limits (token buckets): one for INVITEs, one for the other requests that
//    start nothing inside an existing dialog. Beyond a limit a trusted source gets 503 with
//    Retry-After; any other source gets no answer at all.
//  - The source table is bounded; when it is full of active sources, a new untrusted source is
//    dropped (a trusted one passes without a bucket).
//  - While the call layer is full (or draining) it says so with one flag, and an INVITE that passed
//    everything else is answered here (486 Busy Here or 503) without a call ever being created.
//  - Refusals are counted by reason and reported at most once per source per interval.
//
// With no policy set (the addon used as a library) everything passes.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/Config.hpp"

namespace sipai {

/** An address block: 16 bytes (IPv4 as ::ffff:a.b.c.d) and a prefix length over them. */
struct AddressBlock {
  std::array<uint8_t, 16> addr{};
  unsigned prefix = 128;
  /** Parse "192.0.2.1", "192.0.2.0/24", "2001:db8::/32". False when it is none of them. */
  static bool parse(const std::string& text, AddressBlock* out);
  bool contains(const std::array<uint8_t, 16>& a) const;
};

struct AdmissionPolicy;
/** Build the policy from JS's config; returns "" or the problem (a bad address entry, named). */
std::string admissionPolicyFrom(const AdmissionConfig& c, AdmissionPolicy* out);

struct AdmissionPolicy {
  bool enabled = false;       // false: everything passes (no daemon policy)
  bool anySource = false;     // calls.allow: [any]
  bool fromPatterns = false;  // calls.allow has From URI patterns: untrusted INVITEs go on to that check
  std::vector<AddressBlock> trusted;
  std::vector<std::string> users;  // Request-URI users that name an account (empty: any)
  double invitesPerSec = 20, inviteBurst = 40;
  double requestsPerSec = 50, requestBurst = 100;
  unsigned retryAfterSec = 5;
  unsigned logIntervalSec = 60;
  std::size_t maxSources = 4096;
};


enum class Verdict { Pass, Forbidden, NotFound, RateLimited, Drop, Busy, Draining };

/** What the guard does with one request. */
struct Decision {
  Verdict verdict = Verdict::Pass;
  unsigned retryAfterSec = 0;
  bool trusted = false;
  /** Report this refusal now (first in the interval); `suppressed` refusals were not reported. */
  bool report = false;
  uint64_t suppressed = 0;
};

class Admission {
 public:
  /** Replace the policy (any thread). Buckets of known sources are kept. */
  void configure(AdmissionPolicy p);
  /**
   * Decide on a request from `src` (16-byte address) that starts something: an INVITE (`invite`)
   * or another request outside a known dialog. `ruriUser` is the Request-URI user ("" when none).
   * `nowSec` is a monotonic clock in seconds.
   */
  Decision check(const std::array<uint8_t, 16>& src, bool invite, const std::string& ruriUser, double nowSec);
  AdmissionStats stats() const;
  /** Answer INVITEs that pass everything else with `code` (486 full, 503 draining) or 0 (let them in). Any thread. */
  void setCallRefusal(int code);
  /** Forget sources and counters (library restart). The policy stays. */
  void reset();

 private:
  struct Bucket {
    double invites = 0, requests = 0;  // tokens
    double updated = 0;                // last refill
    double lastReport = -1e18;
    uint64_t suppressed = 0;
  };
  struct Key {
    std::array<uint8_t, 16> a;
    bool operator==(const Key& o) const { return a == o.a; }
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };

  bool trusted(const std::array<uint8_t, 16>& a) const;
  Bucket* bucketFor(const std::array<uint8_t, 16>& a, double now);
  void prune(double now);

  mutable std::mutex mu_;
  AdmissionPolicy p_;
  std::unordered_map<Key, Bucket, KeyHash> buckets_;
  AdmissionStats stats_;
  int callRefusal_ = 0;
};

}  // namespace sipai
