// libFuzzer target: QUIC transport parameter decoder (impl/quic/transport_params.h).
//
// Input: a transport parameter blob, decoded as sent by a client and as sent by a server.
// Properties checked:
//   - decode never crashes (sanitizers catch memory errors);
//   - every error has a reason and is TRANSPORT_PARAMETER_ERROR;
//   - if decoding succeeds, re-encoding (no GREASE) and decoding again gives equal parameters,
//     ignoring what is never sent (unknown/GREASE parameters, grease_quic_bit), and re-encoding
//     that gives the same bytes;
//   - adding a GREASE parameter built from the input does not change the decoded parameters.
#include "quic/transport_params.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iroh;
  using namespace iroh::quic;
  const ByteView blob(data, size);

  for (Role peer : {Role::kClient, Role::kServer}) {
    auto first = decode_transport_parameters(blob, peer);
    if (!first.ok()) {
      if (first.error().message.empty()) __builtin_trap();
      if (first.error().code != TransportError::kTransportParameterError) __builtin_trap();
      continue;
    }
    TransportParameters expected = *first;
    expected.unknown.clear();
    expected.grease_quic_bit = false;

    const Bytes encoded = encode_transport_parameters(*first, peer);
    auto second = decode_transport_parameters(encoded, peer);
    if (!second.ok()) __builtin_trap();
    if (!(*second == expected)) __builtin_trap();
    if (encode_transport_parameters(*second, peer) != encoded) __builtin_trap();

    const GreaseParameter grease = make_grease_parameter(blob.first(size < 24 ? size : 24));
    auto greased =
        decode_transport_parameters(encode_transport_parameters(*first, peer, grease), peer);
    if (!greased.ok()) __builtin_trap();
    if (greased->unknown.size() != 1 || greased->unknown[0].id != grease.id) __builtin_trap();
    greased->unknown.clear();
    if (!(*greased == expected)) __builtin_trap();
  }
  return 0;
}
