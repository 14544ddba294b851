// The library's start: endpoint, transports, null sound device, codecs and the message guard
// (loop thread).
#include <algorithm>
#include <cctype>

#include "../core/Redact.hpp"
#include "SipCore.hpp"
#include "SipMessage.hpp"

namespace sipai {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// PJSIP's log, forwarded to JS as LogEvents (loop thread, and any pj thread that logs). SIP messages
// in it (logging.sipMessages) have their credentials and SRTP keys masked before they leave.
class LogBridge : public pj::LogWriter {
 public:
  explicit LogBridge(EventSink* sink) : sink_(sink) {}
  void write(const pj::LogEntry& entry) override {
    try {
      std::string msg = entry.msg;
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
      if (mayHoldSipSecrets(msg)) msg = redactSipSecrets(msg);
      sink_->post(LogEvent{entry.level, msg});
    } catch (...) {
      // Losing a log line is better than unwinding into pjlib.
    }
  }

 private:
  EventSink* sink_;
};

}  // namespace

void SipThread::Impl::startLibrary() {
  // pjlib logs to stdout until libInit installs our writer; stdout is the JSON log stream.
  pj_log_set_level(0);
  MessageGuard::reset();
  ep.reset(new pj::Endpoint);
  ep->libCreate();

  pj::EpConfig ec;
  ec.uaConfig.threadCnt = 0;
  ec.uaConfig.mainThreadOnly = true;
  ec.uaConfig.userAgent = cfg.userAgent;
  ec.uaConfig.maxCalls = cfg.maxCalls;
  ec.logConfig.level = static_cast<unsigned>(std::max(0, std::min(6, cfg.logLevel)));
  ec.logConfig.consoleLevel = ec.logConfig.level;
  ec.logConfig.msgLogging = cfg.logLevel >= 5;
  ec.logConfig.decor = PJ_LOG_HAS_SENDER | PJ_LOG_HAS_INDENT;
  ec.logConfig.writer = new LogBridge(sink);  // owned and deleted by libDestroy
  ec.medConfig.clockRate = cfg.clockRate;
  ec.medConfig.sndClockRate = 0;
  ec.medConfig.audioFramePtime = cfg.ptimeMs;
  ec.medConfig.channelCount = 1;
  ec.medConfig.noVad = true;
  ec.medConfig.ecTailLen = 0;
  ec.medConfig.ecOptions = 0;
  ec.medConfig.jbInit = cfg.jbInitMs;
  ec.medConfig.jbMinPre = cfg.jbMinPreMs;
  ec.medConfig.jbMaxPre = cfg.jbMaxPreMs;
  ec.medConfig.jbMax = cfg.jbMaxMs;
  // RTP has an ioqueue of its own, polled every 2 ms by our RTP thread (startRtpThread), so the
  // SIP work of a burst of new calls on the loop thread cannot delay the packets of calls already
  // up (late packets arrive in clumps and grow their adaptive jitter buffers). pjmedia's own media
  // thread is not used: it polls with a 500 ms timeout, and a socket registered while it waits
  // (every new call) was not read until that poll returned, so a call's first ~480 ms of RTP
  // arrived as one burst and the jitter buffer started at its maximum.
  ec.medConfig.threadCnt = 0;
  ec.medConfig.hasIoqueue = true;
  // Keep the clock running while idle so the first call starts on a warm bridge.
  ec.medConfig.sndAutoCloseTime = -1;
  ep->libInit(ec);
  MessageGuard::install(pjsua_get_pjsip_endpt(), sink);

  auto mkTransport = [&](const char* name, pjsip_transport_type_e type, const TransportConfig& t) {
    if (!t.enabled) return;
    pj::TransportConfig tc;
    tc.port = t.port;
    tc.boundAddress = t.bindAddress;
    tc.publicAddress = t.publicAddress;
    if (type == PJSIP_TRANSPORT_TLS) {
      tc.tlsConfig.certFile = t.certFile;
      tc.tlsConfig.privKeyFile = t.privKeyFile;
      tc.tlsConfig.CaListFile = t.caListFile;
      tc.tlsConfig.password = t.password;
      tc.tlsConfig.verifyServer = t.verifyServer;
      tc.tlsConfig.verifyClient = t.verifyClient;
      // The lowest version accepted, as protocol flags (`method` would pin exactly one version).
      tc.tlsConfig.method = PJSIP_SSL_UNSPECIFIED_METHOD;
      tc.tlsConfig.proto = t.minTlsVersion == "tlsv1.3" ? PJ_SSL_SOCK_PROTO_TLS1_3
                                                        : (PJ_SSL_SOCK_PROTO_TLS1_2 | PJ_SSL_SOCK_PROTO_TLS1_3);
    }
    try {
      transportIds[name] = ep->transportCreate(type, tc);
    } catch (const pj::Error& e) {
      throw NativeException(ErrorKind::Generic,
                            std::string(name) + " transport on " + (t.bindAddress.empty() ? "*" : t.bindAddress) + ":" +
                                std::to_string(t.port) + ": " + e.reason,
                            0, e.status);
    }
  };
  mkTransport("udp", PJSIP_TRANSPORT_UDP, cfg.udp);
  mkTransport("tcp", PJSIP_TRANSPORT_TCP, cfg.tcp);
  mkTransport("tls", PJSIP_TRANSPORT_TLS, cfg.tls);
  if (transportIds.empty()) throw NativeException(ErrorKind::Type, "no SIP transport enabled");

  ep->libStart();
  // This build has no sound device back end: the null device provides the bridge clock.
  ep->audDevManager().setNullDev();

  // Codec priorities by name ("PCMU", "G722", "opus"): listed ones in order, every other codec off.
  pj::CodecInfoVector2 codecs = ep->codecEnum2();
  for (const auto& ci : codecs) {
    std::string id = ci.codecId;
    std::string name = lower(id.substr(0, id.find('/')));
    int prio = 0;
    for (std::size_t i = 0; i < cfg.codecs.size(); ++i) {
      if (lower(cfg.codecs[i]) == name) {
        prio = 254 - static_cast<int>(i);
        break;
      }
    }
    ep->codecSetPriority(id, static_cast<pj_uint8_t>(prio));
  }
  startRtpThread();
}

void SipThread::Impl::startRtpThread() {
  pj_ioqueue_t* ioq = pjmedia_endpt_get_ioqueue(pjsua_get_pjmedia_endpt());
  if (!ioq) throw NativeException(ErrorKind::Generic, "the media endpoint has no ioqueue", 0, 0);
  rtpStop.store(false);
  rtpThread = std::thread([this, ioq] {
    try {
      ep->libRegisterThread("rtp");
    } catch (...) {
      logCall(1, 0, "the RTP thread could not register with pjlib");
      return;
    }
    while (!rtpStop.load(std::memory_order_acquire)) {
      pj_time_val timeout = {0, 2};
      pj_ioqueue_poll(ioq, &timeout);
    }
  });
}

void SipThread::Impl::stopRtpThread() noexcept {
  rtpStop.store(true, std::memory_order_release);
  if (rtpThread.joinable()) rtpThread.join();
}

}  // namespace sipai
