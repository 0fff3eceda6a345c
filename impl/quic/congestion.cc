// NewReno: RFC 9002 §7 and Appendix B. CUBIC: RFC 9438 (§4.2 window function, §4.3 Reno-friendly
// region, §4.6 multiplicative decrease, §4.7 fast convergence, §4.8 timeout, §5.8 app-limited),
// with RFC 9002's slow start and recovery period.
#include "quic/congestion.h"

#include <algorithm>
#include <cmath>

namespace iroh::quic {

std::uint64_t initial_congestion_window(std::uint64_t mds) {
  return std::min<std::uint64_t>(10 * mds, std::max<std::uint64_t>(14720, 2 * mds));
}

std::uint64_t minimum_congestion_window(std::uint64_t mds) { return 2 * mds; }

namespace {

// Shared by both algorithms: slow start, recovery period, persistent congestion, PMTU changes.
class ControllerBase : public CongestionController {
 public:
  explicit ControllerBase(std::uint64_t mds) : mds_(mds), cwnd_(initial_congestion_window(mds)) {}

  std::uint64_t window() const override { return cwnd_; }
  std::uint64_t ssthresh() const override { return ssthresh_; }

  bool in_recovery(Instant sent_time) const override {
    return recovery_start_ && sent_time <= *recovery_start_;
  }

  void on_packet_acked(Instant now, Instant sent_time, std::uint64_t bytes, const RttEstimator& rtt,
                       bool app_limited) override {
    last_ack_ = now;
    if (in_recovery(sent_time)) return;  // RFC 9002 B.5: no growth during recovery
    if (app_limited) return;             // RFC 9002 §7.8, RFC 9438 §5.8
    any_growth_ = true;
    if (cwnd_ < ssthresh_) {
      // RFC 9002 §7.3.1: slow start grows by the bytes acknowledged.
      cwnd_ += bytes;
      return;
    }
    congestion_avoidance(now, bytes, rtt);
  }

  void on_congestion_event(Instant now, Instant sent_time) override {
    if (in_recovery(sent_time)) return;  // RFC 9002 §7.3.2: one reduction per period
    recovery_start_ = now;
    reduce(now);
  }

  void on_persistent_congestion(Instant) override {
    // RFC 9002 §7.6.2 / B.8.
    cwnd_ = minimum_congestion_window(mds_);
    recovery_start_.reset();
    reset_after_persistent_congestion();
  }

  void on_max_datagram_size(std::uint64_t mds) override {
    mds_ = mds;
    if (!any_growth_ && !recovery_start_) {
      // RFC 9002 §7.2: recompute the initial window with the new size.
      cwnd_ = initial_congestion_window(mds);
    }
    cwnd_ = std::max(cwnd_, minimum_congestion_window(mds));
  }

 protected:
  virtual void congestion_avoidance(Instant now, std::uint64_t bytes, const RttEstimator& rtt) = 0;
  virtual void reduce(Instant now) = 0;
  virtual void reset_after_persistent_congestion() {}

  std::uint64_t mds_;
  std::uint64_t cwnd_;
  std::uint64_t ssthresh_ = UINT64_MAX;
  std::optional<Instant> recovery_start_;
  std::optional<Instant> last_ack_;
  bool any_growth_ = false;
};

// ---- NewReno ----

class NewReno final : public ControllerBase {
 public:
  using ControllerBase::ControllerBase;
  const char* name() const override { return "newreno"; }
  void on_packet_sent(Instant, std::uint64_t, std::uint64_t) override {}

 private:
  void congestion_avoidance(Instant, std::uint64_t bytes, const RttEstimator&) override {
    // RFC 9002 §7.3.3 / B.5: one mds per window of acknowledged bytes.
    acked_in_ca_ += bytes;
    while (acked_in_ca_ >= cwnd_) {
      acked_in_ca_ -= cwnd_;
      cwnd_ += mds_;
    }
  }
  void reduce(Instant) override {
    // RFC 9002 B.6, kLossReductionFactor = 0.5.
    ssthresh_ = cwnd_ / 2;
    cwnd_ = std::max(ssthresh_, minimum_congestion_window(mds_));
    acked_in_ca_ = 0;
  }
  void reset_after_persistent_congestion() override { acked_in_ca_ = 0; }

  std::uint64_t acked_in_ca_ = 0;
};

// ---- CUBIC ----

class Cubic final : public ControllerBase {
 public:
  static constexpr double kC = 0.4;     // RFC 9438 §5.1
  static constexpr double kBeta = 0.7;  // RFC 9438 §4.6
  // RFC 9438 §4.3: alpha_cubic = 3 (1 - beta) / (1 + beta).
  static constexpr double kAlpha = 3.0 * (1.0 - kBeta) / (1.0 + kBeta);

  using ControllerBase::ControllerBase;
  const char* name() const override { return "cubic"; }

  void on_packet_sent(Instant now, std::uint64_t bytes,
                      std::uint64_t bytes_in_flight_after) override {
    // Restart after idle: the time the sender had nothing in flight does not count towards t,
    // so the window does not jump when sending resumes (RFC 9438 §5.8, as Linux does).
    if (bytes_in_flight_after <= bytes && epoch_start_ && last_ack_ && now > *last_ack_) {
      *epoch_start_ += now - *last_ack_;
    }
  }

 private:
  double segments(std::uint64_t bytes) const {
    return static_cast<double>(bytes) / static_cast<double>(mds_);
  }

  void congestion_avoidance(Instant now, std::uint64_t bytes, const RttEstimator& rtt) override {
    const double cwnd = segments(cwnd_);
    if (!epoch_start_) {
      // RFC 9438 §4.2: a new congestion avoidance epoch. Coming straight from slow start (no
      // reduction yet) w_max is the current window and K = 0.
      epoch_start_ = now;
      if (w_max_ < cwnd) {
        w_max_ = cwnd;
        k_ = 0;
      } else {
        k_ = std::cbrt((w_max_ - cwnd) / kC);
      }
      w_est_ = cwnd;
      cwnd_prior_ = std::max(cwnd_prior_, cwnd);
    }
    const double acked = segments(bytes);
    // RFC 9438 §4.3: Reno-friendly estimate; alpha becomes 1 once W_est reaches cwnd_prior.
    const double alpha = w_est_ >= cwnd_prior_ ? 1.0 : kAlpha;
    w_est_ += alpha * acked / cwnd;

    const double t = std::chrono::duration<double>(now - *epoch_start_).count();
    const double rtt_s = std::chrono::duration<double>(rtt.smoothed()).count();
    const double target_cubic = w_cubic(t + rtt_s);
    if (w_cubic(t) < w_est_) {
      // Reno-friendly region: follow W_est.
      cwnd_ = std::max(cwnd_, static_cast<std::uint64_t>(w_est_ * static_cast<double>(mds_)));
      return;
    }
    // RFC 9438 §4.4/§4.5: target clamped to [cwnd, 1.5 cwnd]; grow (target - cwnd) / cwnd per
    // acknowledged segment.
    const double target = std::clamp(target_cubic, cwnd, 1.5 * cwnd);
    grow_ += (target - cwnd) / cwnd * acked * static_cast<double>(mds_);
    if (grow_ >= 1.0) {
      const auto inc = static_cast<std::uint64_t>(grow_);
      cwnd_ += inc;
      grow_ -= static_cast<double>(inc);
    }
  }

  double w_cubic(double t) const {
    const double d = t - k_;
    return kC * d * d * d + w_max_;
  }

  void reduce(Instant) override {
    const double cwnd = segments(cwnd_);
    // RFC 9438 §4.7: fast convergence.
    if (cwnd < w_max_) {
      w_max_ = cwnd * (1.0 + kBeta) / 2.0;
    } else {
      w_max_ = cwnd;
    }
    cwnd_prior_ = cwnd;
    // RFC 9438 §4.6: ssthresh = cwnd * beta, at least the minimum window.
    ssthresh_ =
        std::max(static_cast<std::uint64_t>(std::llround(static_cast<double>(cwnd_) * kBeta)),
                 minimum_congestion_window(mds_));
    cwnd_ = ssthresh_;
    epoch_start_.reset();
    grow_ = 0;
  }

  void reset_after_persistent_congestion() override {
    // RFC 9438 §4.8: after a timeout start over with slow start; ssthresh stays as set by the
    // preceding congestion event.
    epoch_start_.reset();
    w_max_ = 0;
    cwnd_prior_ = 0;
    grow_ = 0;
  }

  std::optional<Instant> epoch_start_;
  double w_max_ = 0;       // segments
  double k_ = 0;           // seconds
  double w_est_ = 0;       // segments
  double cwnd_prior_ = 0;  // segments
  double grow_ = 0;        // fractional bytes not yet added
};

}  // namespace

std::unique_ptr<CongestionController> make_congestion_controller(CongestionAlgorithm algorithm,
                                                                 std::uint64_t max_datagram_size) {
  switch (algorithm) {
    case CongestionAlgorithm::kNewReno:
      return std::make_unique<NewReno>(max_datagram_size);
    case CongestionAlgorithm::kCubic:
      return std::make_unique<Cubic>(max_datagram_size);
  }
  return std::make_unique<NewReno>(max_datagram_size);
}

}  // namespace iroh::quic
