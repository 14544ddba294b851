// Plain event structs that cross from the pj loop thread to JS (through EventSink). No pj or
// napi types here. Each event is created on the loop thread, moved into the sink, converted to a
// JS object on the JS thread and destroyed there.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "Errors.hpp"

namespace sipai {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/** Reply to a JS request (resolves or rejects its promise). */
struct ReplyEvent {
  uint64_t requestId = 0;
  bool ok = true;
  NativeError error;
  double value = 0;  // e.g. a new handle
  std::vector<std::pair<std::string, std::string>> strings;  // e.g. transport addresses
};

struct IncomingCallEvent {
  uint32_t call = 0;
  uint32_t account = 0;
  std::string fromUri, toUri, requestUri, sipCallId, srcAddress, remoteContact;
  HeaderList headers;
};

struct CallStateEvent {
  uint32_t call = 0;
  std::string state;  // calling, incoming, early, connecting, confirmed, disconnected
  int sipCode = 0;
  std::string reason;
  std::string sipCallId;
  double connectDurationMs = 0;
};

struct CallMediaEvent {
  uint32_t call = 0;
  bool active = false;
  std::string codec;
  unsigned codecClockRate = 0;
  std::string status;  // active, local_hold, remote_hold, none, error
};

struct DtmfEvent {
  uint32_t call = 0;
  std::string digit;
  std::string method;  // rfc2833, info
  unsigned durationMs = 0;
};

struct TransferStatusEvent {
  uint32_t call = 0;
  int sipCode = 0;
  std::string reason;
  bool final = false;
};

struct CallClosedEvent {
  uint32_t call = 0;
};

struct RegStateEvent {
  uint32_t account = 0;
  int sipCode = 0;
  std::string reason;
  int expiresSec = 0;
  bool registered = false;
  bool unregistering = false;
};

/** The registrar stopped answering our OPTIONS keepalives, or answers again (we then re-register). */
struct RegistrarEvent {
  uint32_t account = 0;
  bool reachable = true;
  int sipCode = 0;  // its answer, or 408 / 503 when none came
  std::string reason;
};

struct LogEvent {
  int level = 0;
  std::string message;
};

/** The library stopped (shutdown finished, or the loop thread failed). */
struct StoppedEvent {
  bool failed = false;
  std::string reason;
};

using Event = std::variant<ReplyEvent, IncomingCallEvent, CallStateEvent, CallMediaEvent, DtmfEvent,
                           TransferStatusEvent, CallClosedEvent, RegStateEvent, RegistrarEvent, LogEvent, StoppedEvent>;

}  // namespace sipai
