#include "quic/pacer.h"

#include <algorithm>
#include <cmath>

namespace iroh::quic {

Pacer::Pacer(std::uint64_t max_datagram_size) : mds_(max_datagram_size) {}

void Pacer::refill(Instant now) {
  if (now > last_) {
    tokens_ =
        std::min(capacity_, tokens_ + static_cast<double>((now - last_).count()) * bytes_per_ns_);
    last_ = now;
  }
}

Instant Pacer::next_send_time(Instant now, std::uint64_t cwnd, Duration srtt,
                              std::uint64_t packet_bytes) {
  const double cw = static_cast<double>(std::max<std::uint64_t>(cwnd, mds_));
  const auto srtt_ns =
      static_cast<double>(std::max<Duration>(srtt, std::chrono::microseconds(1)).count());
  bytes_per_ns_ = kPacingGain * cw / srtt_ns;
  const double burst = std::clamp(bytes_per_ns_ / kPacingGain *
                                     static_cast<double>(Duration(kBurstInterval).count()),
                                 static_cast<double>(kBurstPackets * mds_),
                                 static_cast<double>(kMaxBurstPackets * mds_));
  capacity_ = std::max(std::min(burst, cw), static_cast<double>(std::max(packet_bytes, mds_)));
  if (tokens_ < 0) {
    tokens_ = capacity_;
    last_ = now;
  }
  refill(now);
  tokens_ = std::min(tokens_, capacity_);
  const double need = static_cast<double>(packet_bytes);
  if (tokens_ >= need) return now;
  const double wait_ns = std::ceil((need - tokens_) / bytes_per_ns_);
  return now + Duration(static_cast<Duration::rep>(wait_ns));
}

void Pacer::on_sent(Instant now, std::uint64_t bytes) {
  if (tokens_ < 0) {
    tokens_ = 0;
    last_ = now;
    return;
  }
  refill(now);
  tokens_ = std::max(0.0, tokens_ - static_cast<double>(bytes));
}

}  // namespace iroh::quic
