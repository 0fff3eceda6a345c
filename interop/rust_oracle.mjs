// rust_oracle.mjs — batch oracle: ask the real Rust iroh (npm @number0/iroh 1.1.0, native iroh 1.0.2)
// about keys, signatures, EndpointId text forms and EndpointTickets.
//
// Usage (from anywhere; the package is resolved relative to this file's repo root):
//   echo '[{"op":"id_parse","text":"03a1…"}]' | node --no-deprecation interop/rust_oracle.mjs
//
// Protocol
//   stdin : ONE JSON array of request objects.
//   stdout: ONE JSON array of response objects, same length and order as the requests; nothing else
//           is ever written to stdout. Diagnostics go to stderr. Exit 0 on success; exit 1 (and no
//           stdout) only if stdin is not a JSON array or the iroh package cannot be loaded.
//   Every op runs inside its own try/catch: a failing op yields {ok:false, error} where `error` is
//   the FIRST LINE of the Rust error message (the napi binding appends anyhow backtraces).
//   Byte strings are lowercase hex in both directions; ids are returned as Rust's Display form
//   (lowercase hex, 64 chars).
//
// Ops (request → success response; every success response also carries ok:true)
//   {op:"key", secret:hex32, message:hex}
//       → {ok, id, short, signature}     SecretKey.fromBytes(secret): public(), fmtShort(), sign(message)
//   {op:"id_parse", text}
//       → {ok, id} | {ok:false, error}   EndpointId.fromString(text) (hex or base32, Rust FromStr)
//   {op:"id_from_bytes", bytes:hex}
//       → {ok, id} | {ok:false, error}   EndpointId.fromBytes (rejects non-curve points)
//   {op:"verify", id:hex, message:hex, signature:hex}
//       → {ok} | {ok:false, error}       EndpointId.fromString(id).verify(message, Signature.fromBytes(sig))
//   {op:"ticket_from_addr", id, relay:string|null, addrs:[ "ip:port", ... ]}
//       → {ok, ticket, blob, id, relay, addrs} | {ok:false, error}
//                                        EndpointTicket.fromAddr(new EndpointAddr(id, relay, addrs))
//                                        (at most one relay: a limitation of the JS binding);
//                                        id/relay/addrs = what Rust reads back from `ticket`
//                                        (EndpointTicket.fromString(ticket).endpointAddr(), as in ticket_parse)
//   {op:"ticket_parse", ticket}
//       → {ok, id, relay, addrs, reencoded, relays, blob} | {ok:false, error}
//                                        EndpointTicket.fromString(ticket); `relay` = endpointAddr().relayUrl()
//                                        (Rust reports only one), `addrs` = directAddresses() (IPv6 as
//                                        "[x]:p"), `reencoded` = toString() of the parsed ticket.
//                                        `relays` = ALL relay URLs, read by this script from the postcard
//                                        blob of `reencoded` (bytes produced by Rust), `blob` = that blob.
//   Unknown op → {ok:false, error:"unknown op …"}.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(path.join(here, '..', 'package.json'))

function firstLine(e) {
  const msg = e && typeof e === 'object' && 'message' in e ? String(e.message) : String(e)
  return msg.split('\n')[0]
}

function hexToBytes(h, what = 'hex') {
  if (typeof h !== 'string' || h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new Error(`oracle: ${what} is not an even-length hex string`)
  }
  return Array.from(Buffer.from(h, 'hex'))
}

const bytesToHex = (b) => Buffer.from(b).toString('hex')

// RFC 4648 base32 decoder (uppercase alphabet, no padding) — only used on strings Rust produced.
function base32decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const out = []
  let bits = 0
  let acc = 0
  for (const ch of s) {
    const v = alphabet.indexOf(ch)
    if (v < 0) throw new Error(`oracle: bad base32 character ${JSON.stringify(ch)}`)
    acc = (acc << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((acc >> bits) & 0xff)
    }
    acc &= (1 << bits) - 1
  }
  return Uint8Array.from(out)
}

function ticketBlob(ticket) {
  if (!ticket.startsWith('endpoint')) throw new Error(`oracle: unexpected ticket prefix: ${ticket}`)
  return base32decode(ticket.slice('endpoint'.length).toUpperCase())
}

// Postcard unsigned LEB128. Returns [value, nextOffset].
function readVarint(buf, off) {
  let value = 0
  let shift = 0
  for (;;) {
    if (off >= buf.length) throw new Error('oracle: truncated varint')
    const b = buf[off++]
    value += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return [value, off]
    shift += 7
  }
}

// All relay URLs in a Rust-produced ticket blob (00 | id | count | TransportAddr*).
function relaysFromBlob(blob) {
  let off = 0
  if (blob[off++] !== 0) throw new Error('oracle: unexpected ticket version')
  off += 32
  let count
  ;[count, off] = readVarint(blob, off)
  const relays = []
  for (let i = 0; i < count; i++) {
    const variant = blob[off++]
    if (variant === 0) {
      let len
      ;[len, off] = readVarint(blob, off)
      relays.push(new TextDecoder('utf-8', { fatal: true }).decode(blob.subarray(off, off + len)))
      off += len
    } else if (variant === 1) {
      const fam = blob[off++]
      off += fam === 0 ? 4 : 16
      ;[, off] = readVarint(blob, off)
    } else {
      break // custom/unknown: relays are sorted first, nothing more to find
    }
  }
  return relays
}

function makeHandlers(I) {
  const { EndpointAddr, EndpointId, EndpointTicket, SecretKey, Signature } = I
  return {
    key(r) {
      const sk = SecretKey.fromBytes(hexToBytes(r.secret, 'secret'))
      const id = sk.public()
      const signature = sk.sign(hexToBytes(r.message ?? '', 'message')).toString()
      return { ok: true, id: id.toString(), short: id.fmtShort(), signature }
    },
    id_parse(r) {
      return { ok: true, id: EndpointId.fromString(r.text).toString() }
    },
    id_from_bytes(r) {
      return { ok: true, id: EndpointId.fromBytes(hexToBytes(r.bytes, 'bytes')).toString() }
    },
    verify(r) {
      const id = EndpointId.fromString(r.id)
      const sig = Signature.fromBytes(hexToBytes(r.signature, 'signature'))
      id.verify(hexToBytes(r.message ?? '', 'message'), sig)
      return { ok: true }
    },
    ticket_from_addr(r) {
      const id = EndpointId.fromString(r.id)
      const addr = new EndpointAddr(id, r.relay ?? null, r.addrs ?? [])
      const ticket = EndpointTicket.fromAddr(addr).toString()
      const back = EndpointTicket.fromString(ticket).endpointAddr()
      return {
        ok: true,
        ticket,
        blob: bytesToHex(ticketBlob(ticket)),
        id: back.id().toString(),
        relay: back.relayUrl(),
        addrs: back.directAddresses(),
      }
    },
    ticket_parse(r) {
      const t = EndpointTicket.fromString(r.ticket)
      const a = t.endpointAddr()
      const reencoded = t.toString()
      const blob = ticketBlob(reencoded)
      return {
        ok: true,
        id: a.id().toString(),
        relay: a.relayUrl(),
        addrs: a.directAddresses(),
        reencoded,
        relays: relaysFromBlob(blob),
        blob: bytesToHex(blob),
      }
    },
  }
}

async function main() {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  let requests
  try {
    requests = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (e) {
    process.stderr.write(`rust_oracle: stdin is not valid JSON: ${firstLine(e)}\n`)
    process.exit(1)
  }
  if (!Array.isArray(requests)) {
    process.stderr.write('rust_oracle: stdin must be a JSON array of requests\n')
    process.exit(1)
  }
  let I
  try {
    I = require('@number0/iroh')
  } catch (e) {
    process.stderr.write(`rust_oracle: cannot load @number0/iroh (run tools/setup-deps): ${firstLine(e)}\n`)
    process.exit(1)
  }
  const handlers = makeHandlers(I)
  const responses = requests.map((r) => {
    try {
      const op = r && typeof r === 'object' ? r.op : undefined
      const h = Object.prototype.hasOwnProperty.call(handlers, op) ? handlers[op] : null
      if (!h) return { ok: false, error: `unknown op ${JSON.stringify(op)}` }
      return h(r)
    } catch (e) {
      return { ok: false, error: firstLine(e) }
    }
  })
  process.stdout.write(JSON.stringify(responses) + '\n')
}

main().catch((e) => {
  process.stderr.write(`rust_oracle: ${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
