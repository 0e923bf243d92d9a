// SHA-1 and base64, for Sec-WebSocket-Accept (RFC 6455 section 4.2.2): the
// only use of either, so no crypto library is linked. SHA-1 is not used for
// anything that needs it to be collision resistant.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace iocpnet {

using Sha1Digest = std::array<uint8_t, 20>;

// FIPS 180-4 SHA-1 of len bytes.
Sha1Digest sha1(const uint8_t* data, size_t len);
inline Sha1Digest sha1(std::string_view s) { return sha1(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

// RFC 4648 base64 with padding.
std::string base64Encode(const uint8_t* data, size_t len);
// Decodes canonical padded base64 into out (at most outCapacity bytes);
// returns the decoded length, or -1 if text is not base64 or does not fit.
long base64Decode(std::string_view text, uint8_t* out, size_t outCapacity);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string webSocketAccept(std::string_view key);

}  // namespace iocpnet
