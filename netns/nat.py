"""nftables rulesets for the lab's NAT tiers (RFC 4787 behaviours) and the UDP-blocking firewall.

Tiers (lower case everywhere):
  none      no NAT: the device has a public address on the internet segment (no router at all).
  open      endpoint-independent mapping + endpoint-independent filtering (full cone).
  moderate  endpoint-independent mapping + address-and-port-dependent filtering (port-restricted cone).
  strict    address-and-port-dependent mapping (a fresh random port per destination) + APDF (symmetric).
  cgnat     a moderate home NAT whose WAN sits on a carrier segment behind a moderate carrier NAT;
            `router_ruleset` is called once per router with tier 'moderate' (see topology.py).

Why the explicit maps: Linux `masquerade`/`snat` keeps a mapping per conntrack entry only. A flow to a
new destination usually gets the same port (port preservation) but not always (a clash, or an early
inbound punch packet that created a conntrack entry on the router first), so masquerade alone is not
endpoint-independent. Every UDP packet leaving the WAN is therefore recorded, after translation, in
  out_map  internal addr . port -> external addr . port   (used by later outbound flows: EIM)
  in_map   external port        -> internal addr . port   (used for inbound DNAT: EIF, and hairpinning)
Both entries time out after `mapping_timeout_s` without outbound traffic (RFC 4787 REQ-6: outbound
refresh). Filtering state is conntrack's; the router's conntrack UDP timeouts are set to the same value
(see `conntrack_sysctls`), so an idle mapping stops admitting inbound packets after the timeout.

Routers drop unsolicited inbound packets addressed to themselves (`iifname wan ct state new drop` on
input). Without it an early punch packet reaches the router's own stack, its conntrack entry is
confirmed, and the later outbound SNAT has to pick another port: port-restricted pairs would then fail
because of the lab, not because of the NAT type.
"""
from __future__ import annotations

TIERS = ("none", "open", "moderate", "strict", "cgnat")
FIREWALLS = (None, "udp-block")
DEFAULT_MAPPING_TIMEOUT_S = 120

# Names of the router's interfaces (topology.py creates them with these names).
WAN_IF = "wan"
LAN_IF = "lan"
TABLE = "irohlab"


class NatConfigError(ValueError):
    """A NAT tier / firewall / timeout the lab cannot build."""


def check_config(nat: str, hairpin: bool, mapping_timeout_s: int, firewall: str | None) -> None:
    if nat not in TIERS:
        raise NatConfigError(f"unknown NAT tier {nat!r} (expected one of {', '.join(TIERS)})")
    if firewall not in FIREWALLS:
        raise NatConfigError(f"unknown firewall {firewall!r} (expected 'udp-block' or none)")
    if not isinstance(mapping_timeout_s, int) or not 1 <= mapping_timeout_s <= 86400:
        raise NatConfigError(f"mapping_timeout_s must be an integer 1..86400, got {mapping_timeout_s!r}")
    if nat == "none" and hairpin:
        raise NatConfigError("hairpin needs a NAT (tier 'none' has no router)")


def router_ruleset(tier: str, wan_addr: str, lan_cidr: str, *, hairpin: bool = False,
                   mapping_timeout_s: int = DEFAULT_MAPPING_TIMEOUT_S,
                   firewall: str | None = None) -> str:
    """The nft script (for `nft -f -`) of one NAT router. tier: open | moderate | strict."""
    if tier not in ("open", "moderate", "strict"):
        raise NatConfigError(f"router_ruleset: tier {tier!r} is not a single-router tier")
    check_config(tier, hairpin, mapping_timeout_s, firewall)
    t = f"{mapping_timeout_s}s"
    eim = tier in ("open", "moderate")
    # The outbound UDP translation: EIM reuses the recorded mapping, strict draws a random port for
    # every new conntrack entry (= every new destination address/port).
    if eim:
        udp_snat = ["ip saddr . udp sport @out_map snat ip to ip saddr . udp sport map @out_map"]
    else:
        udp_snat = [f"meta l4proto udp snat ip to {wan_addr} fully-random"]

    pre = []
    if tier == "open":
        pre.append(f'iifname "{WAN_IF}" ip daddr {wan_addr} udp dport @in_map '
                   f"dnat ip to udp dport map @in_map")
    if hairpin:
        # A LAN host sending to the router's public address and a mapped port reaches the internal
        # owner of that mapping; the source is translated back to the sender's public mapping below.
        pre.append(f'iifname "{LAN_IF}" ip daddr {wan_addr} udp dport @in_map '
                   f"dnat ip to udp dport map @in_map")

    post = []
    if hairpin:
        for rule in udp_snat:
            post.append(f"ip saddr {lan_cidr} ip daddr {lan_cidr} ct status dnat {rule}")
        post.append(f"ip saddr {lan_cidr} ip daddr {lan_cidr} ct status dnat snat ip to {wan_addr}")
    for rule in udp_snat:
        post.append(f'oifname "{WAN_IF}" {rule}')
    post.append(f'oifname "{WAN_IF}" snat ip to {wan_addr}')

    forward = []
    if firewall == "udp-block":
        forward.append(f'iifname "{WAN_IF}" meta l4proto udp drop')
        forward.append(f'oifname "{WAN_IF}" meta l4proto udp drop')
    forward += [
        "ct state established,related accept",
        f'iifname "{LAN_IF}" accept',
        "ct status dnat accept",  # open tier (in_map DNAT) and hairpinned packets
    ]

    def block(lines):
        return "\n".join("    " + ln for ln in lines)

    return f"""table ip {TABLE} {{
  map in_map {{ type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout {t}; }}
  map out_map {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout {t}; }}
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
{block(pre)}
  }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
{block(post)}
  }}
  chain learn_mapping {{ type filter hook postrouting priority srcnat + 100; policy accept;
    oifname "{WAN_IF}" meta l4proto udp update @in_map {{ udp sport : ct original ip saddr . ct original proto-src }}
    oifname "{WAN_IF}" meta l4proto udp update @out_map {{ ct original ip saddr . ct original proto-src : ip saddr . udp sport }}
  }}
  chain forward {{ type filter hook forward priority filter; policy drop;
{block(forward)}
  }}
  chain input {{ type filter hook input priority filter; policy accept;
    iifname "{WAN_IF}" ct state new drop
  }}
}}
"""


def host_firewall_ruleset(firewall: str, uplink_if: str) -> str:
    """For a device without a router (tier 'none'): the same UDP block, on the host itself."""
    if firewall != "udp-block":
        raise NatConfigError(f"unknown firewall {firewall!r}")
    return f"""table ip {TABLE} {{
  chain input {{ type filter hook input priority filter; policy accept;
    iifname "{uplink_if}" meta l4proto udp drop
  }}
  chain output {{ type filter hook output priority filter; policy accept;
    oifname "{uplink_if}" meta l4proto udp drop
  }}
}}
"""


CHURN_TABLE = "irohlab_churn"


def udp_block_ruleset(uplink_if: str) -> str:
    """Churn 'udp-block': the device's UDP in and out is dropped (TCP, hence the relay, still
    works), in its own table so that 'udp-unblock' can delete it without touching anything else."""
    return f"""table ip {CHURN_TABLE} {{
  chain input {{ type filter hook input priority filter; policy accept;
    iifname "{uplink_if}" meta l4proto udp drop
  }}
  chain output {{ type filter hook output priority filter; policy accept;
    oifname "{uplink_if}" meta l4proto udp drop
  }}
}}
"""


def conntrack_sysctls(mapping_timeout_s: int) -> dict[str, str]:
    """Per-namespace sysctls that make conntrack's UDP filtering state expire with the mapping."""
    return {
        "net.netfilter.nf_conntrack_udp_timeout": str(mapping_timeout_s),
        "net.netfilter.nf_conntrack_udp_timeout_stream": str(mapping_timeout_s),
    }
