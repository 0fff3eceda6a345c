// Stream IDs and stream-count limits (RFC 9000 §2.1, §3.2, §4.6, §19.11, §19.14).
#include "quic/stream_id.h"

#include <gtest/gtest.h>

namespace iroh::quic {
namespace {

// RFC 9000 §2.1 Table 1: the four stream types.
TEST(StreamId, TypeBits) {
  EXPECT_TRUE(is_client_initiated(0x0));
  EXPECT_TRUE(is_bidi(0x0));
  EXPECT_TRUE(is_server_initiated(0x1));
  EXPECT_TRUE(is_bidi(0x1));
  EXPECT_TRUE(is_client_initiated(0x2));
  EXPECT_TRUE(is_uni(0x2));
  EXPECT_TRUE(is_server_initiated(0x3));
  EXPECT_TRUE(is_uni(0x3));
  EXPECT_EQ(stream_initiator(7), Role::kServer);
  EXPECT_EQ(stream_direction(7), StreamDirection::kUni);
  EXPECT_EQ(stream_direction(4), StreamDirection::kBidi);
}

TEST(StreamId, IdOfAndIndexRoundTrip) {
  EXPECT_EQ(stream_id_of(Role::kClient, StreamDirection::kBidi, 0), 0u);
  EXPECT_EQ(stream_id_of(Role::kServer, StreamDirection::kBidi, 0), 1u);
  EXPECT_EQ(stream_id_of(Role::kClient, StreamDirection::kUni, 0), 2u);
  EXPECT_EQ(stream_id_of(Role::kServer, StreamDirection::kUni, 0), 3u);
  EXPECT_EQ(stream_id_of(Role::kClient, StreamDirection::kBidi, 1), 4u);
  EXPECT_EQ(stream_id_of(Role::kServer, StreamDirection::kUni, 25), 103u);
  for (std::uint64_t id : {0ull, 1ull, 2ull, 3ull, 103ull, (1ull << 62) - 1}) {
    EXPECT_EQ(stream_id_of(stream_initiator(id), stream_direction(id), stream_index(id)), id);
  }
}

TEST(StreamId, SendReceivePermissions) {
  // A client may send on its own uni streams and receive on the server's, both on bidi.
  EXPECT_TRUE(can_send(2, Role::kClient));
  EXPECT_FALSE(can_receive(2, Role::kClient));
  EXPECT_FALSE(can_send(3, Role::kClient));
  EXPECT_TRUE(can_receive(3, Role::kClient));
  EXPECT_TRUE(can_send(1, Role::kClient));
  EXPECT_TRUE(can_receive(1, Role::kClient));
  EXPECT_TRUE(is_local(1, Role::kServer));
  EXPECT_FALSE(is_local(1, Role::kClient));
}

TEST(StreamLimits, OpenUpToPeerLimitThenBlocked) {
  StreamLimits l(Role::kClient, StreamDirection::kBidi, 100);
  EXPECT_FALSE(l.can_open());
  EXPECT_EQ(l.blocked_at(), std::nullopt);  // nobody tried yet
  EXPECT_EQ(l.open_next(), std::nullopt);
  EXPECT_EQ(l.blocked_at(), 0u);  // STREAMS_BLOCKED(0)
  l.on_max_streams(2);
  EXPECT_EQ(l.blocked_at(), std::nullopt);
  EXPECT_EQ(l.open_next(), 0u);
  EXPECT_EQ(l.open_next(), 4u);
  EXPECT_EQ(l.open_next(), std::nullopt);
  EXPECT_EQ(l.blocked_at(), 2u);
  l.on_max_streams(1);  // reordered, smaller: ignored
  EXPECT_EQ(l.peer_max_streams(), 2u);
  EXPECT_EQ(l.blocked_at(), 2u);
  l.on_max_streams(3);
  EXPECT_EQ(l.blocked_at(), std::nullopt);
  EXPECT_EQ(l.open_next(), 8u);
  EXPECT_EQ(l.local_opened(), 3u);
}

TEST(StreamLimits, ServerUniIds) {
  StreamLimits l(Role::kServer, StreamDirection::kUni, 100, 3);
  EXPECT_EQ(l.open_next(), 3u);
  EXPECT_EQ(l.open_next(), 7u);
  EXPECT_EQ(l.open_next(), 11u);
  EXPECT_EQ(l.open_next(), std::nullopt);
}

TEST(StreamLimits, MaxStreamsClampedTo2Pow60) {
  StreamLimits l(Role::kClient, StreamDirection::kUni, 1ull << 62);
  l.on_max_streams(~0ull);
  EXPECT_EQ(l.peer_max_streams(), kMaxStreamCount);
  EXPECT_EQ(l.current_max_streams(), kMaxStreamCount);
}

TEST(StreamLimits, LocalStreamNotOpenedIsStreamStateError) {
  StreamLimits l(Role::kClient, StreamDirection::kBidi, 10, 10);
  ASSERT_EQ(l.open_next(), 0u);
  EXPECT_TRUE(l.check_local_stream(0).ok());
  auto r = l.check_local_stream(4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kStreamStateError);
}

// §4.6: a peer stream beyond our advertised limit is STREAM_LIMIT_ERROR.
TEST(StreamLimits, PeerStreamLimitError) {
  StreamLimits l(Role::kServer, StreamDirection::kBidi, 2);
  EXPECT_TRUE(l.check_peer_stream(stream_id_of(Role::kClient, StreamDirection::kBidi, 1)).ok());
  EXPECT_EQ(l.peer_opened(), 2u);  // index 0 implicitly opened too (§3.2)
  EXPECT_TRUE(l.check_peer_stream(0).ok());
  EXPECT_EQ(l.peer_opened(), 2u);
  auto r = l.check_peer_stream(stream_id_of(Role::kClient, StreamDirection::kBidi, 2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kStreamLimitError);
  EXPECT_EQ(l.peer_opened(), 2u);
}

// Closing peer streams raises MAX_STREAMS so `initial` stay concurrently open; updates coalesce.
TEST(StreamLimits, MaxStreamsUpdatesAsPeerStreamsClose) {
  StreamLimits l(Role::kClient, StreamDirection::kUni, 100);
  EXPECT_EQ(l.take_max_streams_update(), std::nullopt);
  EXPECT_TRUE(l.check_peer_stream(stream_id_of(Role::kServer, StreamDirection::kUni, 99)).ok());
  EXPECT_EQ(l.peer_opened(), 100u);
  EXPECT_FALSE(l.check_peer_stream(stream_id_of(Role::kServer, StreamDirection::kUni, 100)).ok());
  l.on_peer_stream_closed();
  l.on_peer_stream_closed();
  l.on_peer_stream_closed();
  EXPECT_EQ(l.take_max_streams_update(), 103u);
  EXPECT_EQ(l.take_max_streams_update(), std::nullopt);
  EXPECT_EQ(l.current_max_streams(), 103u);
  EXPECT_TRUE(l.check_peer_stream(stream_id_of(Role::kServer, StreamDirection::kUni, 102)).ok());
  EXPECT_FALSE(l.check_peer_stream(stream_id_of(Role::kServer, StreamDirection::kUni, 103)).ok());
  l.on_peer_stream_closed();
  EXPECT_EQ(l.take_max_streams_update(), 104u);
}

}  // namespace
}  // namespace iroh::quic
