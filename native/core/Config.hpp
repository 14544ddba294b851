// Plain configuration structs passed from JS (via binding/Convert) to the SIP layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "Events.hpp"

namespace sipai {

struct TransportConfig {
  bool enabled = false;
  std::string bindAddress;   // empty = all interfaces
  unsigned port = 0;         // 0 = any free port
  std::string publicAddress; // advertised address for NAT
  // TLS only
  std::string certFile, privKeyFile, caListFile, password;
  bool verifyServer = false;
  bool verifyClient = false;
  std::string minTlsVersion = "tlsv1.2";  // lowest version accepted: tlsv1.2 (1.2 and 1.3) or tlsv1.3
};

struct EndpointConfig {
  TransportConfig udp, tcp, tls;
  std::string userAgent = "sip-ai-agent";
  unsigned clockRate = 8000;  // conference bridge and PcmPort rate: 8000, 16000, 24000
  unsigned ptimeMs = 20;
  std::vector<std::string> codecs{"PCMU", "PCMA"};  // priority order; others disabled
  int jbInitMs = -1, jbMinPreMs = -1, jbMaxPreMs = -1, jbMaxMs = -1;
  std::string srtp = "disabled";  // disabled | optional | mandatory
  int srtpSecureSignaling = 0;
  unsigned rtpPortStart = 4000;
  unsigned rtpPortRange = 0;
  std::string rtpBindAddress;
  std::string rtpPublicAddress;
  unsigned txRingMs = 10000;
  unsigned rxRingMs = 1000;
  int logLevel = 3;  // pj log level 0..6
  unsigned maxCalls = 256;
  unsigned dtmfMethodDefault = 0;
};

struct AccountConfig {
  std::string idUri;
  std::string registrarUri;  // empty = registration-less
  std::string username, password, realm;  // realm: "" = learn the registrar's, "*" = any
  std::vector<std::string> proxies;
  unsigned expiresSec = 300;
  unsigned retryIntervalSec = 30;
  unsigned firstRetryIntervalSec = 5;
  unsigned keepaliveSec = 0;  // OPTIONS to the registrar this often (0 = never)
  std::string transport;  // "", udp, tcp, tls
  bool isDefault = false;
};

/** The admission policy as JS gives it (see sip/Admission.hpp); enabled = false lets everything pass. */
struct AdmissionConfig {
  bool enabled = false;
  bool anySource = false;
  bool fromPatterns = false;
  std::vector<std::string> trusted;  // IPs or CIDRs
  std::vector<std::string> users;
  double invitesPerSec = 20, inviteBurst = 40;
  double requestsPerSec = 50, requestBurst = 100;
  unsigned retryAfterSec = 5;
  unsigned logIntervalSec = 60;
  std::size_t maxSources = 4096;
};

/** What the message guard refused, by reason. */
struct AdmissionStats {
  uint64_t forbidden = 0;    // 403: INVITE from a source that is not admitted
  uint64_t notFound = 0;     // 404: Request-URI user names no account
  uint64_t rateLimited = 0;  // 503 + Retry-After to a trusted source over its limit
  uint64_t dropped = 0;      // no answer: an untrusted source over its limit, or the table full
  uint64_t busy = 0;         // 486: the call layer is full
  uint64_t draining = 0;     // 503: the agent is shutting down
  uint64_t sources = 0;      // sources currently tracked
};

struct CallRequest {
  uint32_t account = 0;
  std::string uri;
  HeaderList headers;
};

}  // namespace sipai
