// NativeError: what a failed native operation reports to JS. `kind` selects the JS error class
// (TypeError for bad arguments, SipError keeping the SIP status, InvalidStateError, generic).
#pragma once

#include <stdexcept>
#include <string>

namespace sipai {

enum class ErrorKind { None, Type, Sip, InvalidState, Generic };

struct NativeError {
  ErrorKind kind = ErrorKind::None;
  std::string message;
  int sipStatus = 0;  // SIP status code when the failure has one (401, 486, 503...)
  int pjStatus = 0;   // pj_status_t of the failing call, 0 if none
};

/** Thrown inside native code; converted to NativeError at the command boundary. */
class NativeException : public std::runtime_error {
 public:
  NativeException(ErrorKind kind, const std::string& msg, int sipStatus = 0, int pjStatus = 0)
      : std::runtime_error(msg), error_{kind, msg, sipStatus, pjStatus} {}
  const NativeError& error() const { return error_; }

 private:
  NativeError error_;
};

}  // namespace sipai
