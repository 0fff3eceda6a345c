// relay_url_oracle.mjs — ask the real Rust iroh (npm @number0/iroh, native iroh 1.0.2) how it
// normalises relay URLs.
//
// Usage (from the repo root):
//   echo '["HTTPS://Relay.Example.COM:443"]' | node interop/relay_url_oracle.mjs
// Input:  a JSON array of strings on stdin.
// Output: a JSON array of {input, ok: true, normalised} or {input, ok: false, error} on stdout.
//
// How: the JS EndpointAddr keeps the raw string, but EndpointTicket.fromAddr() runs
// iroh_base::RelayUrl::from_str (the Rust `url` crate, WHATWG parser) and the ticket's postcard
// blob carries the normalised URL bytes. We decode the ticket ourselves, so the result is exactly
// the bytes Rust puts on the wire:
//   blob = 00 (version) | 32-byte id | varint count (=1) | 00 (TransportAddr::Relay) |
//          varint len | URL bytes (UTF-8)
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const { EndpointAddr, EndpointTicket, SecretKey } = require('@number0/iroh')

const ID = SecretKey.fromBytes([...Array(32).keys()]).public()

// RFC 4648 base32 decoder (uppercase alphabet, no padding).
function base32decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const out = []
  let bits = 0
  let acc = 0
  for (const ch of s) {
    const v = alphabet.indexOf(ch)
    if (v < 0) throw new Error(`bad base32 character ${JSON.stringify(ch)}`)
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

// Unsigned LEB128 (postcard varint). Returns [value, nextOffset].
function readVarint(buf, off) {
  let value = 0
  let shift = 0
  for (;;) {
    if (off >= buf.length) throw new Error('truncated varint')
    const b = buf[off++]
    value += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return [value, off]
    shift += 7
  }
}

// Returns the normalised URL string, or throws if Rust rejects the URL.
export function normalise(url) {
  const addr = new EndpointAddr(ID, url, [])
  const ticket = EndpointTicket.fromAddr(addr).toString()
  if (!ticket.startsWith('endpoint')) throw new Error(`unexpected ticket prefix: ${ticket}`)
  const blob = base32decode(ticket.slice('endpoint'.length).toUpperCase())
  let off = 0
  if (blob[off++] !== 0) throw new Error('unexpected ticket version')
  off += 32
  let count
  ;[count, off] = readVarint(blob, off)
  if (count !== 1) throw new Error(`expected 1 transport address, got ${count}`)
  if (blob[off++] !== 0) throw new Error('expected TransportAddr::Relay')
  let len
  ;[len, off] = readVarint(blob, off)
  if (off + len !== blob.length) throw new Error('trailing bytes after relay URL')
  return new TextDecoder('utf-8', { fatal: true }).decode(blob.subarray(off, off + len))
}

async function main() {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  const inputs = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  if (!Array.isArray(inputs)) throw new Error('stdin must be a JSON array of strings')
  const results = inputs.map((input) => {
    try {
      return { input, ok: true, normalised: normalise(input) }
    } catch (e) {
      return { input, ok: false, error: String(e && e.message ? e.message : e) }
    }
  })
  process.stdout.write(JSON.stringify(results, null, 1) + '\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`relay_url_oracle: ${e.stack || e}\n`)
    process.exit(1)
  })
}
