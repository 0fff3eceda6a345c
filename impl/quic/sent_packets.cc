#include "quic/sent_packets.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace iroh::quic {

SentPackets::Entry* SentPackets::find(std::uint64_t pn) {
  if (pn < base_ || pn - base_ >= entries_.size()) return nullptr;
  Entry& e = entries_[pn - base_];
  return e.slot == Slot::kOutstanding ? &e : nullptr;
}

void SentPackets::on_sent(const SentPacketMeta& packet) {
  assert(!largest_sent_ || packet.pn > *largest_sent_);
  if (entries_.empty()) {
    base_ = packet.pn;
    settled_.clear();
  } else {
    // Skipped packet numbers are settled from the start.
    const std::uint64_t next = base_ + entries_.size();
    if (packet.pn > next) settled_.insert(next, packet.pn);
    while (base_ + entries_.size() < packet.pn) entries_.push_back(Entry{});
  }
  entries_.push_back(Entry{packet, Slot::kOutstanding});
  largest_sent_ = packet.pn;
  ++outstanding_;
  if (packet.in_flight) {
    bytes_in_flight_ += packet.bytes;
    if (packet.ack_eliciting) ++ack_eliciting_in_flight_;
  }
  if (packet.ack_eliciting) last_ack_eliciting_sent_ = packet.time_sent;
}

void SentPackets::settle(Entry& e) {
  assert(e.slot == Slot::kOutstanding);
  e.slot = Slot::kEmpty;
  --outstanding_;
  if (e.meta.in_flight) {
    bytes_in_flight_ -= e.meta.bytes;
    if (e.meta.ack_eliciting) --ack_eliciting_in_flight_;
  }
}

void SentPackets::trim_front() {
  std::uint64_t old_base = base_;
  while (!entries_.empty() && entries_.front().slot != Slot::kOutstanding) {
    entries_.pop_front();
    ++base_;
  }
  if (entries_.empty()) {
    settled_.clear();
  } else if (base_ != old_base) {
    settled_.remove_below(base_);
  }
}

QuicResult<AckOutcome> SentPackets::on_ack(Instant now,
                                           const std::vector<frame::PacketInterval>& intervals,
                                           const RttEstimator& rtt) {
  AckOutcome out;
  if (intervals.empty()) return out;
  std::uint64_t largest = 0;
  for (const auto& iv : intervals) {
    if (iv.smallest > iv.largest) {
      return quic_error(TransportError::kFrameEncodingError, "ACK range with smallest > largest",
                        frame_type::kAck);
    }
    largest = std::max(largest, iv.largest);
  }
  if (!largest_sent_ || largest > *largest_sent_) {
    return quic_error(TransportError::kProtocolViolation,
                      "ACK of packet number " + std::to_string(largest) + " that was never sent",
                      frame_type::kAck);
  }
  if (!largest_acked_ || largest > *largest_acked_) {
    largest_acked_ = largest;
    out.largest_acked_increased = true;
  }

  bool any_ack_eliciting = false;
  std::optional<Instant> largest_time;
  // Intervals come largest first; collect in ascending order by walking them backwards.
  for (auto it = intervals.rbegin(); it != intervals.rend(); ++it) {
    if (entries_.empty()) break;
    const std::uint64_t top = base_ + entries_.size() - 1;
    if (it->largest < base_ || it->smallest > top) continue;
    const std::uint64_t lo = std::max(it->smallest, base_);
    const std::uint64_t hi = std::min(it->largest, top);
    // Visit only the packet numbers in [lo, hi] that are not settled yet.
    std::uint64_t cursor = lo;
    while (cursor <= hi) {
      const auto done = settled_.first_at_or_after(cursor);
      std::uint64_t run_end = hi;  // inclusive end of the unsettled run starting at cursor
      if (done && done->start <= hi) {
        if (done->start == cursor) {
          cursor = done->end;
          continue;
        }
        run_end = done->start - 1;
      }
      for (std::uint64_t pn = cursor; pn <= run_end; ++pn) {
        Entry* e = find(pn);
        if (!e) continue;
        out.newly_acked.push_back(e->meta);
        if (e->meta.ack_eliciting) any_ack_eliciting = true;
        if (pn == largest) largest_time = e->meta.time_sent;
        settle(*e);
      }
      settled_.insert(cursor, run_end + 1);
      if (run_end == UINT64_MAX) break;
      cursor = run_end + 1;
    }
  }
  if (!out.newly_acked.empty()) out.largest_newly_acked = out.newly_acked.back().pn;
  if (largest_time && any_ack_eliciting) out.latest_rtt = now - *largest_time;
  trim_front();

  Duration rtt_for_loss = std::max(rtt.latest(), rtt.smoothed());
  if (out.latest_rtt) {
    rtt_for_loss = rtt.has_sample() ? std::max(rtt_for_loss, *out.latest_rtt) : *out.latest_rtt;
  }
  out.lost = detect_lost_with(now, rtt_for_loss);
  return out;
}

std::vector<SentPacketMeta> SentPackets::detect_lost(Instant now, const RttEstimator& rtt) {
  return detect_lost_with(now, std::max(rtt.latest(), rtt.smoothed()));
}

std::vector<SentPacketMeta> SentPackets::detect_lost_with(Instant now, Duration rtt_for_loss) {
  std::vector<SentPacketMeta> lost;
  loss_time_.reset();
  if (!largest_acked_ || entries_.empty()) return lost;
  // RFC 9002 §6.1.2: kTimeThreshold = 9/8.
  const Duration loss_delay = std::max(rtt_for_loss * 9 / 8, kGranularity);
  const std::uint64_t largest_acked = *largest_acked_;
  for (std::uint64_t pn = base_; pn < largest_acked && pn - base_ < entries_.size(); ++pn) {
    Entry* e = find(pn);
    if (!e) continue;
    const bool by_time = now - e->meta.time_sent >= loss_delay;
    const bool by_count = largest_acked - pn >= kPacketThreshold;
    if (by_time || by_count) {
      lost.push_back(e->meta);
      settle(*e);
      settled_.insert(pn, pn + 1);
      continue;
    }
    // Later packets are sent later and are closer to largest_acked: none of them is lost yet.
    loss_time_ = e->meta.time_sent + loss_delay;
    break;
  }
  trim_front();
  return lost;
}

std::vector<SentPacketMeta> SentPackets::discard() {
  std::vector<SentPacketMeta> in_flight;
  for (const Entry& e : entries_) {
    if (e.slot == Slot::kOutstanding && e.meta.in_flight) in_flight.push_back(e.meta);
  }
  entries_.clear();
  settled_.clear();
  base_ = 0;
  loss_time_.reset();
  last_ack_eliciting_sent_.reset();
  bytes_in_flight_ = 0;
  ack_eliciting_in_flight_ = 0;
  outstanding_ = 0;
  return in_flight;
}

Duration persistent_congestion_duration(const RttEstimator& rtt, Duration max_ack_delay) {
  return (rtt.pto_base() + max_ack_delay) * kPersistentCongestionThreshold;
}

bool in_persistent_congestion(const std::vector<SentPacketMeta>& lost, const RttEstimator& rtt,
                              Duration max_ack_delay, std::optional<Instant> first_rtt_sample) {
  if (!rtt.has_sample() || !first_rtt_sample || lost.size() < 2) return false;
  const Duration period = persistent_congestion_duration(rtt, max_ack_delay);
  bool in_run = false;  // run_start holds the first eligible packet of the current run
  Instant run_start{};
  for (std::size_t i = 0; i < lost.size(); ++i) {
    const SentPacketMeta& p = lost[i];
    if (i > 0 && p.pn != lost[i - 1].pn + 1) in_run = false;
    if (!p.ack_eliciting || p.time_sent <= *first_rtt_sample) continue;
    if (!in_run) {
      in_run = true;
      run_start = p.time_sent;
    } else if (p.time_sent - run_start > period) {
      return true;
    }
  }
  return false;
}

Duration pto_duration(const RttEstimator& rtt, Duration max_ack_delay, unsigned pto_count) {
  const Duration base = rtt.pto_base() + max_ack_delay;
  const unsigned shift = std::min(pto_count, kMaxPtoBackoffShift);
  if (base >= kMaxPto / (Duration::rep{1} << shift)) return kMaxPto;
  return base * (Duration::rep{1} << shift);
}

}  // namespace iroh::quic
