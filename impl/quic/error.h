// QUIC transport error codes (RFC 9000 §20.1) and a Result type that carries one.
//
// Decoders in the QUIC engine do not just fail, they fail with the error code the connection must
// be closed with (CONNECTION_CLOSE 0x1c carries it). QuicResult<T> is iroh::Result<T, QuicError>
// (QuicError = {code, frame_type, message}); to_result(r) turns it into a plain iroh::Result<T>
// whose message names the code, for callers outside quic/.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/result.h"

namespace iroh::quic {

// RFC 9000 §20.1 transport error codes.
enum class TransportError : std::uint64_t {
  kNoError = 0x0,
  kInternalError = 0x1,
  kConnectionRefused = 0x2,
  kFlowControlError = 0x3,
  kStreamLimitError = 0x4,
  kStreamStateError = 0x5,
  kFinalSizeError = 0x6,
  kFrameEncodingError = 0x7,
  kTransportParameterError = 0x8,
  kConnectionIdLimitError = 0x9,
  kProtocolViolation = 0xa,
  kInvalidToken = 0xb,
  kApplicationError = 0xc,
  kCryptoBufferExceeded = 0xd,
  kKeyUpdateError = 0xe,
  kAeadLimitReached = 0xf,
  kNoViablePath = 0x10,
  // 0x0100-0x01ff: CRYPTO_ERROR, the low byte is the TLS alert (use crypto_error()).
};

inline constexpr std::uint64_t kCryptoErrorBase = 0x100;
inline constexpr TransportError crypto_error(std::uint8_t tls_alert) {
  return static_cast<TransportError>(kCryptoErrorBase + tls_alert);
}

// "FRAME_ENCODING_ERROR", "CRYPTO_ERROR", ... ("UNKNOWN_ERROR" for unregistered codes).
constexpr std::string_view transport_error_name(TransportError code) {
  switch (code) {
    case TransportError::kNoError:
      return "NO_ERROR";
    case TransportError::kInternalError:
      return "INTERNAL_ERROR";
    case TransportError::kConnectionRefused:
      return "CONNECTION_REFUSED";
    case TransportError::kFlowControlError:
      return "FLOW_CONTROL_ERROR";
    case TransportError::kStreamLimitError:
      return "STREAM_LIMIT_ERROR";
    case TransportError::kStreamStateError:
      return "STREAM_STATE_ERROR";
    case TransportError::kFinalSizeError:
      return "FINAL_SIZE_ERROR";
    case TransportError::kFrameEncodingError:
      return "FRAME_ENCODING_ERROR";
    case TransportError::kTransportParameterError:
      return "TRANSPORT_PARAMETER_ERROR";
    case TransportError::kConnectionIdLimitError:
      return "CONNECTION_ID_LIMIT_ERROR";
    case TransportError::kProtocolViolation:
      return "PROTOCOL_VIOLATION";
    case TransportError::kInvalidToken:
      return "INVALID_TOKEN";
    case TransportError::kApplicationError:
      return "APPLICATION_ERROR";
    case TransportError::kCryptoBufferExceeded:
      return "CRYPTO_BUFFER_EXCEEDED";
    case TransportError::kKeyUpdateError:
      return "KEY_UPDATE_ERROR";
    case TransportError::kAeadLimitReached:
      return "AEAD_LIMIT_REACHED";
    case TransportError::kNoViablePath:
      return "NO_VIABLE_PATH";
  }
  const auto raw = static_cast<std::uint64_t>(code);
  if (raw >= kCryptoErrorBase && raw < kCryptoErrorBase + 0x100) return "CRYPTO_ERROR";
  return "UNKNOWN_ERROR";
}

// A connection-level error: the code to close with, the frame type that caused it (0 when not
// caused by a frame, as RFC 9000 §19.19 prescribes) and a human-readable reason.
struct QuicError {
  TransportError code = TransportError::kInternalError;
  std::uint64_t frame_type = 0;
  std::string message;

  // As a plain iroh::Error: "FRAME_ENCODING_ERROR: <message>".
  Error to_error() const {
    return make_error(std::string(transport_error_name(code)) + ": " + message);
  }
};

inline QuicError quic_error(TransportError code, std::string message,
                            std::uint64_t frame_type = 0) {
  return QuicError{code, frame_type, std::move(message)};
}

template <class T>
using QuicResult = Result<T, QuicError>;

// Drops the code into the message (see QuicError::to_error).
template <class T>
Result<T> to_result(QuicResult<T>&& r) {
  if (r.ok()) return std::move(r).value();
  return r.error().to_error();
}

}  // namespace iroh::quic
