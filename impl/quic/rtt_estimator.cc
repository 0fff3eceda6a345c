#include "quic/rtt_estimator.h"

#include <algorithm>

namespace iroh::quic {

RttEstimator::RttEstimator(Duration initial_rtt)
    : initial_(initial_rtt), smoothed_(initial_rtt), rttvar_(initial_rtt / 2) {}

void RttEstimator::update(Duration latest_rtt, Duration ack_delay, bool handshake_confirmed,
                          Duration max_ack_delay) {
  if (latest_rtt < Duration::zero()) latest_rtt = Duration::zero();
  if (ack_delay < Duration::zero()) ack_delay = Duration::zero();
  latest_ = latest_rtt;
  if (!has_sample_) {
    has_sample_ = true;
    min_ = latest_rtt;
    smoothed_ = latest_rtt;
    rttvar_ = latest_rtt / 2;
    return;
  }
  min_ = std::min(min_, latest_rtt);
  if (handshake_confirmed) ack_delay = std::min(ack_delay, max_ack_delay);
  Duration adjusted = latest_rtt;
  if (latest_rtt >= min_ + ack_delay) adjusted = latest_rtt - ack_delay;
  const Duration diff = smoothed_ > adjusted ? smoothed_ - adjusted : adjusted - smoothed_;
  rttvar_ = (3 * rttvar_ + diff) / 4;
  smoothed_ = (7 * smoothed_ + adjusted) / 8;
}

Duration RttEstimator::pto_base() const { return smoothed_ + std::max(4 * rttvar_, kGranularity); }

}  // namespace iroh::quic
