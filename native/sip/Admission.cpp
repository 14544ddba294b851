#include "Admission.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace sipai {

bool AddressBlock::parse(const std::string& text, AddressBlock* out) {
  std::string addr = text;
  int prefix = -1;
  std::size_t slash = text.find('/');
  if (slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) return false;
    prefix = std::stoi(p);
  }
  AddressBlock b;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    if (prefix > 32) return false;
    b.addr.fill(0);
    b.addr[10] = 0xff;
    b.addr[11] = 0xff;
    std::memcpy(&b.addr[12], &v4, 4);
    b.prefix = 96 + static_cast<unsigned>(prefix < 0 ? 32 : prefix);
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    if (prefix > 128) return false;
    std::memcpy(b.addr.data(), &v6, 16);
    b.prefix = static_cast<unsigned>(prefix < 0 ? 128 : prefix);
  } else {
    return false;
  }
  *out = b;
  return true;
}

bool AddressBlock::contains(const std::array<uint8_t, 16>& a) const {
  unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(addr.data(), a.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (a[full] & mask);
}

std::string admissionPolicyFrom(const AdmissionConfig& c, AdmissionPolicy* out) {
  AdmissionPolicy p;
  p.enabled = c.enabled;
  p.anySource = c.anySource;
  p.fromPatterns = c.fromPatterns;
  for (std::size_t i = 0; i < c.trusted.size(); ++i) {
    AddressBlock b;
    if (!AddressBlock::parse(c.trusted[i], &b))
      return "trusted[" + std::to_string(i) + "] is not an IP address or CIDR (got \"" + c.trusted[i] + "\")";
    p.trusted.push_back(b);
  }
  p.users = c.users;
  p.invitesPerSec = c.invitesPerSec;
  p.inviteBurst = c.inviteBurst;
  p.requestsPerSec = c.requestsPerSec;
  p.requestBurst = c.requestBurst;
  p.retryAfterSec = c.retryAfterSec;
  p.logIntervalSec = c.logIntervalSec;
  p.maxSources = c.maxSources;
  *out = std::move(p);
  return "";
}

std::size_t Admission::KeyHash::operator()(const Key& k) const noexcept {
  // FNV-1a over the 16 bytes.
  std::size_t h = 1469598103934665603ull;
  for (uint8_t b : k.a) h = (h ^ b) * 1099511628211ull;
  return h;
}

void Admission::configure(AdmissionPolicy p) {
  std::lock_guard<std::mutex> lk(mu_);
  p_ = std::move(p);
}

void Admission::setCallRefusal(int code) {
  std::lock_guard<std::mutex> lk(mu_);
  callRefusal_ = code;
}

void Admission::reset() {
  std::lock_guard<std::mutex> lk(mu_);
  buckets_.clear();
  stats_ = AdmissionStats{};
  callRefusal_ = 0;
}

AdmissionStats Admission::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  AdmissionStats s = stats_;
  s.sources = buckets_.size();
  return s;
}

bool Admission::trusted(const std::array<uint8_t, 16>& a) const {
  return std::any_of(p_.trusted.begin(), p_.trusted.end(), [&](const AddressBlock& b) { return b.contains(a); });
}

void Admission::prune(double now) {
  // A source whose buckets are full again and that has nothing left to report is forgotten.
  double refill = std::max(p_.inviteBurst / std::max(p_.invitesPerSec, 1e-6), p_.requestBurst / std::max(p_.requestsPerSec, 1e-6));
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const Bucket& b = it->second;
    bool idle = now - b.updated >= refill && (b.suppressed == 0 || now - b.lastReport >= p_.logIntervalSec);
    it = idle ? buckets_.erase(it) : std::next(it);
  }
}

Admission::Bucket* Admission::bucketFor(const std::array<uint8_t, 16>& a, double now) {
  Key k{a};
  auto it = buckets_.find(k);
  if (it != buckets_.end()) {
    Bucket& b = it->second;
    double dt = std::max(0.0, now - b.updated);
    b.invites = std::min(p_.inviteBurst, b.invites + dt * p_.invitesPerSec);
    b.requests = std::min(p_.requestBurst, b.requests + dt * p_.requestsPerSec);
    b.updated = now;
    return &b;
  }
  if (buckets_.size() >= p_.maxSources) prune(now);
  if (buckets_.size() >= p_.maxSources) return nullptr;
  Bucket b;
  b.invites = p_.inviteBurst;
  b.requests = p_.requestBurst;
  b.updated = now;
  return &buckets_.emplace(k, b).first->second;
}

Decision Admission::check(const std::array<uint8_t, 16>& src, bool invite, const std::string& ruriUser, double nowSec) {
  std::lock_guard<std::mutex> lk(mu_);
  Decision d;
  if (!p_.enabled) return d;
  d.trusted = p_.anySource || trusted(src);
  Bucket* b = bucketFor(src, nowSec);
  if (!b) {
    if (!d.trusted) {
      d.verdict = Verdict::Drop;
      stats_.dropped++;
      return d;  // nothing to remember a report by: counted only
    }
  } else {
    double& tokens = invite ? b->invites : b->requests;
    if (tokens >= 1) {
      tokens -= 1;
    } else {
      d.verdict = d.trusted ? Verdict::RateLimited : Verdict::Drop;
      d.retryAfterSec = p_.retryAfterSec;
    }
  }
  if (d.verdict == Verdict::Pass && invite) {
    if (!d.trusted && !p_.fromPatterns) d.verdict = Verdict::Forbidden;
    else if (!p_.users.empty() && std::find(p_.users.begin(), p_.users.end(), ruriUser) == p_.users.end())
      d.verdict = Verdict::NotFound;
    else if (callRefusal_ == 486)
      d.verdict = Verdict::Busy;
    else if (callRefusal_ == 503)
      d.verdict = Verdict::Draining;
  }
  switch (d.verdict) {
    case Verdict::Pass: return d;
    case Verdict::Forbidden: stats_.forbidden++; break;
    case Verdict::NotFound: stats_.notFound++; break;
    case Verdict::RateLimited: stats_.rateLimited++; break;
    case Verdict::Drop: stats_.dropped++; break;
    case Verdict::Busy: stats_.busy++; break;
    case Verdict::Draining: stats_.draining++; break;
  }
  if (b) {
    if (nowSec - b->lastReport >= p_.logIntervalSec) {
      d.report = true;
      d.suppressed = b->suppressed;
      b->suppressed = 0;
      b->lastReport = nowSec;
    } else {
      b->suppressed++;
    }
  }
  return d;
}

}  // namespace sipai
