#include "ws_handshake.h"

#include <algorithm>

#include "ws_crypto.h"

namespace iocpnet {

namespace {

constexpr std::string_view kEndOfHead = "\r\n\r\n";

char lower(char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch; }

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 token characters (header names, Upgrade and Connection tokens).
bool isTokenChar(char ch) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list holds token (case-insensitive).
bool listHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (equalsNoCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// A header value: visible ASCII, spaces and tabs, and obs-text (bytes >= 0x80).
bool validValue(std::string_view v) {
  for (char ch : v) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u < 0x20 && u != '\t') return false;
    if (u == 0x7F) return false;
  }
  return true;
}

UpgradeOutcome refuse(uint16_t status) {
  UpgradeOutcome out;
  out.kind = UpgradeOutcome::Kind::Refuse;
  out.status = status;
  out.response = httpErrorResponse(status);
  return out;
}

// A header the handshake reads once: a second copy is a bad request.
struct SingleHeader {
  std::string_view value;
  bool seen = false;
  bool duplicate = false;
  void set(std::string_view v) {
    duplicate = duplicate || seen;
    seen = true;
    value = v;
  }
};

}  // namespace

std::string httpErrorResponse(uint16_t status) {
  std::string_view text;
  std::string extra;
  switch (status) {
    case 400:
      text = "Bad Request";
      break;
    case 403:
      text = "Forbidden";
      break;
    case 408:
      text = "Request Timeout";
      break;
    case 426:
      text = "Upgrade Required";
      extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
      break;
    case 431:
      text = "Request Header Fields Too Large";
      break;
    case 503:
      text = "Service Unavailable";
      break;
    default:
      text = "Error";
      break;
  }
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(text);
  out += "\r\nConnection: close\r\n";
  out += extra;
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

UpgradeOutcome evaluateUpgradeRequest(std::string_view request, const std::vector<std::string>& origins) {
  // The head ends with the empty line; nothing may follow it here.
  if (request.size() < kEndOfHead.size() || request.substr(request.size() - kEndOfHead.size()) != kEndOfHead) {
    return refuse(400);
  }
  std::string_view head = request.substr(0, request.size() - 2);  // every line keeps its CRLF
  // Request line: GET SP request-target SP HTTP/1.1
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  if (line.substr(0, kUpgradePrefix.size()) != kUpgradePrefix) return refuse(400);
  line.remove_prefix(kUpgradePrefix.size());
  size_t sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return refuse(400);
  std::string_view target = line.substr(0, sp);
  std::string_view version = line.substr(sp + 1);
  for (char ch : target) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7F) return refuse(400);
  }
  if (version != "HTTP/1.1") return refuse(version.substr(0, 5) == "HTTP/" ? 426 : 400);

  std::string upgrade;
  std::string connection;
  SingleHeader host, key, wsVersion, origin;
  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // A bare CR or LF inside a line, or a folded line, is not HTTP/1.1 as sent today.
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos) return refuse(400);
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return refuse(400);
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), isTokenChar)) return refuse(400);
    std::string_view value = trim(line.substr(colon + 1));
    if (!validValue(value)) return refuse(400);
    if (equalsNoCase(name, "upgrade")) {
      if (!upgrade.empty()) upgrade += ',';
      upgrade.append(value);
    } else if (equalsNoCase(name, "connection")) {
      if (!connection.empty()) connection += ',';
      connection.append(value);
    } else if (equalsNoCase(name, "host")) {
      host.set(value);
    } else if (equalsNoCase(name, "sec-websocket-key")) {
      key.set(value);
    } else if (equalsNoCase(name, "sec-websocket-version")) {
      wsVersion.set(value);
    } else if (equalsNoCase(name, "origin")) {
      origin.set(value);
    }
  }
  if (!host.seen || host.duplicate) return refuse(400);
  // A plain HTTP request: this port speaks WebSocket or the raw framing.
  if (!listHas(upgrade, "websocket")) return refuse(426);
  if (!listHas(connection, "upgrade")) return refuse(400);
  if (!wsVersion.seen || wsVersion.duplicate || wsVersion.value != "13") return refuse(426);
  uint8_t nonce[16];
  if (!key.seen || key.duplicate || key.value.size() != 24 || base64Decode(key.value, nonce, sizeof nonce) != 16) {
    return refuse(400);
  }
  if (origin.duplicate) return refuse(400);
  if (!origins.empty() && origin.seen && std::find(origins.begin(), origins.end(), origin.value) == origins.end()) {
    return refuse(403);
  }
  UpgradeOutcome out;
  out.kind = UpgradeOutcome::Kind::Upgrade;
  out.status = 101;
  out.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  out.response += webSocketAccept(key.value);
  out.response += "\r\n\r\n";
  return out;
}

UpgradeOutcome UpgradeReader::feed(const uint8_t* data, size_t len, const std::vector<std::string>& origins,
                                   size_t* consumed) {
  size_t before = buffer_.size();
  size_t take = std::min(len, maxBytes_ - std::min(maxBytes_, before));
  buffer_.append(reinterpret_cast<const char*>(data), take);
  // The end may straddle the previous read.
  size_t from = before >= kEndOfHead.size() - 1 ? before - (kEndOfHead.size() - 1) : 0;
  size_t end = buffer_.find(kEndOfHead, from);
  if (end == std::string::npos) {
    *consumed = take;
    if (buffer_.size() >= maxBytes_) return refuse(431);
    return UpgradeOutcome{};
  }
  size_t requestLength = end + kEndOfHead.size();
  *consumed = requestLength - before;
  buffer_.resize(requestLength);
  return evaluateUpgradeRequest(buffer_, origins);
}

}  // namespace iocpnet
