// Redact: masks secrets in SIP message text before it is logged (pj loop thread, any thread that
// logs). Plain C++, no pj types.
//
//  - Authorization / Proxy-Authorization: a digest response with its nonce is enough to try
//    passwords offline, so everything after the scheme is replaced (username and realm kept, to
//    show who authenticated where).
//  - SDES keys (`a=crypto:<tag> <suite> inline:<key>`): whoever reads the journal could decrypt the
//    call's SRTP; the key material is replaced.
#pragma once

#include <cctype>
#include <string>

namespace sipai {

namespace redact_detail {

inline bool startsWithNoCase(const std::string& s, std::size_t pos, const char* prefix) {
  for (std::size_t i = 0; prefix[i]; ++i) {
    if (pos + i >= s.size()) return false;
    if (std::tolower(static_cast<unsigned char>(s[pos + i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  }
  return true;
}

// The value of param `name="..."` (or unquoted) in [from, to), with its name, or "".
inline std::string keepParam(const std::string& s, std::size_t from, std::size_t to, const char* name) {
  std::string key = std::string(name) + "=";
  for (std::size_t i = from; i < to; ++i) {
    if ((i == from || s[i - 1] == ' ' || s[i - 1] == ',' || s[i - 1] == '\t') && startsWithNoCase(s, i, key.c_str())) {
      std::size_t end = i + key.size();
      if (end < to && s[end] == '"') {
        std::size_t q = s.find('"', end + 1);
        end = (q == std::string::npos || q >= to) ? to : q + 1;
      } else {
        while (end < to && s[end] != ',' && s[end] != ' ' && s[end] != '\t') ++end;
      }
      return s.substr(i, end - i);
    }
  }
  return "";
}

}  // namespace redact_detail

/** True when the text may hold something redactSipSecrets() masks (a cheap pre-check). */
inline bool mayHoldSipSecrets(const std::string& s) {
  return s.find("uthorization") != std::string::npos || s.find("inline:") != std::string::npos;
}

/** The text with credentials and SRTP keys masked; everything else unchanged. */
inline std::string redactSipSecrets(const std::string& s) {
  using namespace redact_detail;
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t eol = s.find('\n', pos);
    std::size_t end = eol == std::string::npos ? s.size() : eol;
    std::size_t lineEnd = end > pos && s[end - 1] == '\r' ? end - 1 : end;
    std::size_t colon = s.find(':', pos);
    bool auth = colon != std::string::npos && colon < lineEnd &&
                (startsWithNoCase(s, pos, "authorization:") || startsWithNoCase(s, pos, "proxy-authorization:"));
    if (auth) {
      std::size_t v = colon + 1;
      while (v < lineEnd && (s[v] == ' ' || s[v] == '\t')) ++v;
      std::size_t schemeEnd = v;
      while (schemeEnd < lineEnd && s[schemeEnd] != ' ' && s[schemeEnd] != '\t') ++schemeEnd;
      out.append(s, pos, schemeEnd - pos);
      std::string user = keepParam(s, schemeEnd, lineEnd, "username");
      std::string realm = keepParam(s, schemeEnd, lineEnd, "realm");
      if (!user.empty()) out += " " + user + (realm.empty() ? "" : ",");
      if (!realm.empty()) out += " " + realm;
      out += " [redacted]";
      out.append(s, lineEnd, end - lineEnd);
    } else {
      std::size_t lineStart = out.size();
      out.append(s, pos, end - pos);
      if (startsWithNoCase(s, pos, "a=crypto:")) {
        // inline:<key material>[|lifetime][|MKI]: mask up to the next space (other params follow).
        std::size_t k = out.find("inline:", lineStart);
        while (k != std::string::npos) {
          std::size_t from = k + 7;
          std::size_t to = from;
          while (to < out.size() && out[to] != ' ' && out[to] != '\t' && out[to] != '\r' && out[to] != '\n' && out[to] != ';') ++to;
          out.replace(from, to - from, "[redacted]");
          k = out.find("inline:", from + 10);
        }
      }
    }
    if (eol == std::string::npos) break;
    out += '\n';
    pos = eol + 1;
  }
  return out;
}

}  // namespace sipai
