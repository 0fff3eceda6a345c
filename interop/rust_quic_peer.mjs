// rust_quic_peer.mjs — the real Rust iroh 1.0.2 (npm @number0/iroh 1.1.0) as a `listen` / `connect`
// peer speaking docs/PEER_CLI.md exactly. Used by tests/integration/test_quic_interop.py.
//
//   node interop/rust_quic_peer.mjs listen --alpn A [--alpn B ...] [--secret HEX64] [--bind IP:PORT]
//        [--echo | --sink | --source N] [--close-code C [--close-reason R]]
//       stdout line 1: the endpoint ticket (EndpointTicket of the id + the bound UDP address, no
//       relay), then one JSON event per line (accepted / closed / stream_error). Handshakes that
//       fail (wrong ALPN, bad key…) are logged on stderr only. SIGINT/SIGTERM: close every
//       connection with code 0 (reason "shutdown"), exit 0.
//   node interop/rust_quic_peer.mjs connect TICKET --alpn A [--bytes N | --stdin] [--echo]
//        [--streams K] [--uni] [--datagrams N [--datagram-size S]] [--idle SECONDS]
//        [--close-code C [--close-reason R]] [--timeout SECONDS] [--json]
//       Exit 0 on success; 1 with ONE stderr line `rust_quic_peer: error: KIND: detail` (and
//       {"ok":false,...} on stdout with --json); 2 on bad command-line input.
//
// Relays and paths (docs/PEER_CLI.md "Relays and paths"): listen/connect [--relay URL
// [--relay-only]] [--qad-port P] [--external-addr IP:PORT ...]; connect also [--bind IP:PORT]
// [--wait-direct S] [--hold S] and reports path, started_relayed, direct_after_ms and paths.
//
// Endpoints use presetMinimal: no discovery; RelayMode.disabled() unless --relay names our one
// relay; the UDP socket(s) of --bind (the client binds 127.0.0.1:0, or [::1]:0 for an IPv6-only
// ticket, unless --bind).
//
// Implementation choices the contract leaves open:
//   * echo server: a reader loop queues chunks and a writer loop drains them, so the echo streams
//     and can never deadlock against a client that writes everything before it reads.
//   * --close-code (server) and the final client close wait for the peer's ACK of all stream data
//     (SendStream.stopped()) first: a QUIC close discards unsent stream data.
//   * before its own close the client waits up to 500 ms for a close by the server, so a server's
//     `--close-code` right after the last echo is reported as closed_by_peer instead of racing.
//   * datagram j: bytes 0..3 = j (u32 BE), byte i >= 4 = pattern(i, stream 0) (position in the
//     datagram). seconds/mb_per_s: from opening the first stream to the last stream verified;
//     mb_per_s = bytes written / 1e6 / seconds.
//   * Rust error → KIND (messages found empirically, iroh 1.0.2):
//       key-mismatch  "the cryptographic handshake failed: error 48: invalid peer certificate: UnknownIssuer"
//       alpn          "aborted by peer: the cryptographic handshake failed: error 120: peer doesn't support any known protocol"
//       closed        "closed by peer: REASON (code N)" / ApplicationClosed(ApplicationClose {…}) / "reset by peer"
//                     / a transport close with NO_ERROR ("aborted by peer: … in the absence of any error")
//       timeout       our own --timeout timer, or Rust's "timed out"
//       unreachable   no usable address / "no route", "unreachable", "network" errors from the socket
//       transport     everything else (e.g. a peer's CONNECTION_CLOSE with PROTOCOL_VIOLATION: "aborted by peer: …")
//
// Env: IROH_NPM = path of @number0/iroh (default: resolved from this repo's node_modules);
//      IROH_LOG  = Trace|Debug|Info|Warn|Error enables Rust tracing (on stderr).
import { createRequire } from 'node:module'
import fs from 'node:fs'
const require = createRequire(import.meta.url)
const PROG = 'rust_quic_peer'

function usageError(msg) {
  process.stderr.write(`${PROG}: error: ${msg}\n`)
  process.exit(2)
}

let iroh
try {
  iroh = require(process.env.IROH_NPM || '@number0/iroh')
} catch (e) {
  process.stderr.write(`${PROG}: error: transport: cannot load @number0/iroh: ${String(e).split('\n')[0]}\n`)
  process.exit(1)
}
const { Endpoint, EndpointAddr, EndpointTicket, RelayMap, RelayMode, presetMinimal, setLogLevel } = iroh
if (process.env.IROH_LOG) setLogLevel(process.env.IROH_LOG)

// ------------------------------------------------------------------------------------------------
// command line
// ------------------------------------------------------------------------------------------------
const VALUE_OPTS = new Set(['--alpn', '--secret', '--bind', '--source', '--close-code', '--close-reason',
  '--bytes', '--streams', '--datagrams', '--datagram-size', '--idle', '--timeout', '--relay', '--qad-port',
  '--wait-direct', '--hold', '--external-addr'])
const FLAG_OPTS = new Set(['--echo', '--sink', '--stdin', '--uni', '--json', '--relay-only'])
const RELAY_OPTS = ['--relay', '--relay-only', '--qad-port', '--external-addr']
const LISTEN_OPTS = new Set(['--alpn', '--secret', '--bind', '--echo', '--sink', '--source', '--close-code',
  '--close-reason', ...RELAY_OPTS])
const CONNECT_OPTS = new Set(['--alpn', '--bytes', '--stdin', '--echo', '--streams', '--uni', '--datagrams',
  '--datagram-size', '--idle', '--close-code', '--close-reason', '--timeout', '--json', '--bind', '--wait-direct',
  '--hold', ...RELAY_OPTS])

function parseArgs(argv) {
  const cmd = argv[0]
  if (cmd !== 'listen' && cmd !== 'connect') usageError('usage: rust_quic_peer.mjs listen|connect ... (see docs/PEER_CLI.md)')
  const allowed = cmd === 'listen' ? LISTEN_OPTS : CONNECT_OPTS
  const o = { cmd, positional: [], multi: {}, flags: new Set() }
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      if (!allowed.has(a)) usageError(`unknown option for ${cmd}: ${a}`)
      if (FLAG_OPTS.has(a)) { o.flags.add(a); continue }
      if (VALUE_OPTS.has(a)) {
        if (i + 1 >= argv.length) usageError(`${a} needs a value`)
        ;(o.multi[a] ||= []).push(argv[++i])
        continue
      }
    }
    o.positional.push(a)
  }
  return o
}

const opts = parseArgs(process.argv.slice(2))
const one = (name) => {
  const v = opts.multi[name]
  if (!v) return undefined
  if (v.length > 1) usageError(`${name} given more than once`)
  return v[0]
}
const intOpt = (name, dflt, min = 0, max = Number.MAX_SAFE_INTEGER) => {
  const v = one(name)
  if (v === undefined) return dflt
  if (!/^[0-9]+$/.test(v)) usageError(`${name}: not a non-negative integer: ${JSON.stringify(v)}`)
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min || n > max) usageError(`${name}: out of range [${min}, ${max}]: ${v}`)
  return n
}
const numOpt = (name, dflt) => {
  const v = one(name)
  if (v === undefined) return dflt
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) usageError(`${name}: not a non-negative number: ${JSON.stringify(v)}`)
  return n
}
const closeCodeOpt = () => {
  const v = one('--close-code')
  if (v === undefined) return undefined
  if (!/^[0-9]+$/.test(v)) usageError(`--close-code: not a non-negative integer: ${JSON.stringify(v)}`)
  const c = BigInt(v)
  if (c >= (1n << 62n)) usageError(`--close-code: larger than a QUIC varint: ${v}`)
  return c
}
const alpns = opts.multi['--alpn'] || []
if (alpns.length === 0) usageError('--alpn is required')
for (const a of alpns) if (a.length === 0 || Buffer.byteLength(a) > 255) usageError(`--alpn: bad length: ${JSON.stringify(a)}`)
const bytesOf = (s) => Array.from(Buffer.from(s))
// The binding takes and returns byte strings as plain JS arrays (a Buffer is rejected with "Failed
// to get Array length"); a plain loop is ~10x faster than Array.from(buffer).
function toArr(buf) {
  const a = new Array(buf.length)
  for (let i = 0; i < buf.length; i++) a[i] = buf[i]
  return a
}

// ------------------------------------------------------------------------------------------------
// helpers
// ------------------------------------------------------------------------------------------------
// byte i of stream k: (i*131 + (i>>13) + k) & 0xff
function pattern(off, len, k) {
  const b = Buffer.allocUnsafe(len)
  for (let j = 0; j < len; j++) {
    const i = off + j
    b[j] = (i * 131 + Math.floor(i / 8192) + k) & 0xff
  }
  return b
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const CHUNK = 256 * 1024

// The binding's errors are `Error: <Debug of the Rust error>\nCaused by: …\n\nStack backtrace: …`.
// Keep the text before the backtrace, joined on one line.
function rustMessage(e) {
  let s = String(e && e.message !== undefined ? e.message : e)
  const bt = s.indexOf('Stack backtrace:')
  if (bt >= 0) s = s.slice(0, bt)
  s = s.replace(/^Error:\s*/, '')
  return s.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ')
}
// the most specific line (the last "Caused by" entry)
function rustCause(e) {
  const parts = rustMessage(e).split(' | ').filter((l) => l !== 'Caused by:')
  return parts[parts.length - 1] || rustMessage(e)
}

function classify(msg) {
  const m = msg.toLowerCase()
  // iroh's server-certificate verifier rejects a key that is not the dialled id as UnknownIssuer
  // (TLS alert 48); other certificate errors stay `transport` (their detail names them).
  // ("aborted by peer: …error 48…" would be the server rejecting OUR certificate: not a mismatch)
  if (/invalid peer certificate: unknownissuer|unknown_?ca|error 48\b/.test(m) && !/aborted by peer/.test(m)) return 'key-mismatch'
  if (/error 120\b|no ?application ?protocol|doesn't support any known protocol/.test(m)) return 'alpn'
  if (/closed by peer|applicationclosed|reset by peer/.test(m)) return 'closed'
  if (/aborted by peer|connectionclosed/.test(m)) return /in the absence of any error/.test(m) ? 'closed' : 'transport'
  if (/timed out|timedout|timeout/.test(m)) return 'timeout'
  if (/unreachable|no route|no addressing|no address|addrnotavail|network is down|connection refused/.test(m)) return 'unreachable'
  return 'transport'
}

// The Rust side only gives the Display text of a transport CONNECTION_CLOSE ("<code description>
// [: reason]"); recover the code from the description (-1 when unknown).
const TRANSPORT_CODES = [
  [0x0, 'in the absence of any error'], [0x1, 'internal error'], [0x2, 'refused to accept a new connection'],
  [0x3, 'more data than permitted'], [0x4, 'exceeded advertised the stream limit'], [0x4, 'stream limit'],
  [0x5, 'not in a state that permitted'], [0x6, 'final size'], [0x7, 'badly formatted'],
  [0x8, 'transport parameters'], [0x9, 'connection ids'], [0xa, 'protocol compliance'], [0xa, 'protocol violation'],
  [0xb, 'retry token'], [0xc, 'application or application protocol'], [0xd, 'crypto frames'],
  [0xe, 'key update'], [0xf, 'confidentiality or integrity limit'], [0x10, 'no viable network path'],
]
function transportCode(desc) {
  const c = /the cryptographic handshake failed: error (\d+)/.exec(desc)
  if (c) return 0x100 + Number(c[1])
  const d = desc.toLowerCase()
  for (const [code, words] of TRANSPORT_CODES) if (d.includes(words)) return code
  return -1
}

// Connection.closed() / closeReason() give Display of the ConnectionError.
function parseClose(text) {
  let m = /^closed by peer: (.*) \(code (\d+)\)$/s.exec(text)
  if (m) return { by: 'peer', kind: 'application', code: Number(m[2]), reason: m[1] }
  m = /^closed by peer: (\d+)$/.exec(text)
  if (m) return { by: 'peer', kind: 'application', code: Number(m[1]), reason: '' }
  m = /^aborted by peer: (.*)$/s.exec(text)
  if (m) return { by: 'peer', kind: 'transport', code: transportCode(m[1]), reason: m[1] }
  if (text === 'timed out') return { by: 'timeout', kind: 'idle', code: 0, reason: '' }
  if (text === 'closed') return { by: 'local', kind: 'application', code: 0, reason: '' }
  if (text === 'reset by peer') return { by: 'peer', kind: 'transport', code: 0, reason: text }
  return { by: 'local', kind: 'transport', code: 0, reason: text }
}

// Relay mode: none, or exactly one relay (our `irohlab relay`), with QUIC address discovery only
// when --qad-port is given (a relay without a QAD listener would cost a ~3 s QAD timeout).
function relayModeOf(url, qadPort) {
  if (!url) return RelayMode.disabled()
  const map = RelayMap.empty()
  const cfg = { url }
  if (qadPort !== undefined) cfg.quicPort = qadPort
  map.insert(cfg)
  return RelayMode.custom(map)
}

async function bindEndpoint(alpnList, bind, secretHex, relayUrl, qadPort) {
  const b = Endpoint.builder()
  presetMinimal(b)
  if (alpnList) b.alpns(alpnList.map(bytesOf))
  if (secretHex) b.secretKey(Array.from(Buffer.from(secretHex, 'hex')))
  b.relayMode(relayModeOf(relayUrl, qadPort))
  b.bindAddr(bind)
  return await b.bind()
}

// --relay URL, --relay-only, --qad-port P (listen and connect)
function relayOpts() {
  const url = one('--relay')
  const relayOnly = opts.flags.has('--relay-only')
  if (relayOnly && url === undefined) usageError('--relay-only needs --relay URL')
  if (url !== undefined && !/^(https?|wss?):\/\/[^/\s]+/.test(url)) usageError(`--relay: not an http(s) URL: ${JSON.stringify(url)}`)
  const qadPort = one('--qad-port') === undefined ? undefined : intOpt('--qad-port', 0, 1, 65535)
  if (qadPort !== undefined && url === undefined) usageError('--qad-port needs --relay URL')
  return { url, relayOnly, qadPort }
}

// --external-addr IP:PORT (repeatable): addresses we are known to be reachable at (e.g. a NAT
// mapping learned out of band), added to the endpoint's hole-punching candidates exactly like
// iroh's user-configured external addresses.
async function addExternalAddrs(ep) {
  for (const a of opts.multi['--external-addr'] || []) {
    if (!splitHostPort(a)) usageError(`--external-addr: not IP:PORT: ${JSON.stringify(a)}`)
    await ep.addExternalAddr(a)
  }
}

// A path snapshot as the contract names it: "udp:IP:PORT" or "relay:URL".
function pathName(p) {
  if (!p) return null
  return p.isRelay ? `relay:${p.remoteAddr}` : p.isIp ? `udp:${p.remoteAddr}` : `custom:${p.remoteAddr}`
}

function splitHostPort(s) {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) || /^([^:]+):(\d+)$/.exec(s)
  return m ? { host: m[1], port: Number(m[2]) } : null
}

// ------------------------------------------------------------------------------------------------
// listen
// ------------------------------------------------------------------------------------------------
async function listen() {
  if (opts.positional.length) usageError(`unexpected argument: ${opts.positional[0]}`)
  const secret = one('--secret')
  if (secret !== undefined && !/^[0-9a-fA-F]{64}$/.test(secret)) usageError('--secret must be 64 hex digits')
  const bind = one('--bind') ?? '127.0.0.1:0'
  const hp = splitHostPort(bind)
  if (!hp || hp.port > 65535) usageError(`--bind: not IP:PORT: ${bind}`)
  const modes = ['--echo', '--sink'].filter((f) => opts.flags.has(f)).length + (one('--source') !== undefined ? 1 : 0)
  if (modes > 1) usageError('--echo, --sink and --source are exclusive')
  const mode = opts.flags.has('--sink') ? 'sink' : one('--source') !== undefined ? 'source' : 'echo'
  const sourceN = intOpt('--source', 0)
  const closeCode = closeCodeOpt()
  const closeReason = one('--close-reason') ?? 'bye'
  if (one('--close-reason') !== undefined && closeCode === undefined) usageError('--close-reason needs --close-code')
  const relay = relayOpts()

  const log = (...a) => process.stderr.write(`[${PROG} listen] ${a.join(' ')}\n`)
  const emit = (obj) => fs.writeSync(1, JSON.stringify(obj) + '\n')

  let ep
  try {
    ep = await bindEndpoint(alpns, bind, secret, relay.url, relay.qadPort)
    await addExternalAddrs(ep)
  } catch (e) {
    process.stderr.write(`${PROG}: error: ${classify(rustMessage(e))}: bind ${bind}: ${rustCause(e)}\n`)
    process.exit(1)
  }
  const sockets = ep.boundSockets()
  let addr = sockets.find((s) => { const x = splitHostPort(s); return x && x.host === hp.host && (hp.port === 0 || x.port === hp.port) })
  if (!addr) addr = ep.addr().directAddresses()[0]
  if (!addr) {
    process.stderr.write(`${PROG}: error: transport: no bound socket matches ${bind} (bound: ${sockets.join(', ')})\n`)
    process.exit(1)
  }
  if (relay.url) {
    // the ticket is only useful once the relay knows us
    let timer
    const ok = await Promise.race([ep.online().then(() => true),
      new Promise((r) => { timer = setTimeout(() => r(false), 10000) })])
    clearTimeout(timer)
    if (!ok) {
      process.stderr.write(`${PROG}: error: unreachable: relay ${relay.url} not reachable within 10 s\n`)
      process.exit(1)
    }
  }
  const ticket = EndpointTicket.fromAddr(new EndpointAddr(ep.id(), relay.url ?? null,
    relay.relayOnly ? [] : [addr])).toString()
  fs.writeSync(1, ticket + '\n')
  log(`id ${ep.id().toString()} bound ${sockets.join(' ')} ticket addr ${addr} mode ${mode}`)

  const live = new Map() // Connection -> {localClose, done: Promise}
  let shuttingDown = false

  async function serveConn(conn) {
    const remote = conn.remoteId().toString()
    const alpn = Buffer.from(conn.alpn()).toString()
    const st = { localClose: null }
    emit({ event: 'accepted', remote, alpn })
    const closeLocal = (code, reason) => {
      if (!st.localClose) st.localClose = { code: Number(code), reason }
      try { conn.close(BigInt(code), bytesOf(reason)) } catch (e) { log('close failed', rustMessage(e)) }
    }
    st.closeLocal = closeLocal
    st.done = conn.closed().then((text) => {
      const c = parseClose(text)
      if (c.by === 'local' && st.localClose) Object.assign(c, { kind: 'application', ...st.localClose })
      emit({ event: 'closed', remote, ...c })
      live.delete(conn)
    })
    live.set(conn, st)
    const streamError = (e) => {
      if (conn.closeReason() !== null) return // the connection ended: reported by the closed event
      emit({ event: 'stream_error', remote, message: rustCause(e) })
    }
    let firstBidi = true

    async function drainTo(recv, onChunk) {
      for (;;) {
        const b = await recv.read(CHUNK)
        if (b.length === 0) return
        await onChunk(b)
      }
    }

    async function serveBidi(bi) {
      if (mode === 'echo') {
        const queue = []
        let ended = false
        let wake = null
        const kick = () => { if (wake) { const w = wake; wake = null; w() } }
        const reader = (async () => {
          try { await drainTo(bi.recv, (b) => { queue.push(b); kick() }) } finally { ended = true; kick() }
        })()
        const writer = (async () => {
          for (;;) {
            if (queue.length) { await bi.send.writeAll(queue.shift()); continue }
            if (ended) break
            await new Promise((r) => { wake = r })
          }
        })()
        await Promise.all([reader, writer])
        await bi.send.finish()
      } else if (mode === 'sink') {
        await drainTo(bi.recv, () => {})
        await bi.send.finish()
      } else {
        const reader = drainTo(bi.recv, () => {})
        for (let off = 0; off < sourceN; off += CHUNK) {
          await bi.send.writeAll(toArr(pattern(off, Math.min(CHUNK, sourceN - off), 0)))
        }
        await bi.send.finish()
        await reader
      }
      await bi.send.stopped() // the peer has everything (or stopped the stream)
    }

    const bidiLoop = (async () => {
      for (;;) {
        let bi
        try { bi = await conn.acceptBi() } catch { return }
        const first = firstBidi
        firstBidi = false
        serveBidi(bi).then(() => {
          if (first && closeCode !== undefined) closeLocal(closeCode, closeReason)
        }, streamError)
      }
    })()
    const uniLoop = (async () => {
      for (;;) {
        let recv
        try { recv = await conn.acceptUni() } catch { return }
        ;(async () => {
          const chunks = []
          await drainTo(recv, (b) => { chunks.push(b) })
          if (mode !== 'echo') return
          const send = await conn.openUni()
          for (const c of chunks) await send.writeAll(c)
          await send.finish()
          await send.stopped()
        })().catch(streamError)
      }
    })()
    const dgramLoop = (async () => {
      for (;;) {
        let d
        try { d = await conn.readDatagram() } catch { return }
        if (mode === 'echo') {
          try { conn.sendDatagram(d) } catch (e) { streamError(e) }
        }
      }
    })()
    await Promise.all([bidiLoop, uniLoop, dgramLoop, st.done])
  }

  const acceptLoop = (async () => {
    for (;;) {
      const inc = await ep.acceptNext()
      if (!inc) return
      ;(async () => {
        let conn
        try {
          conn = await (await inc.accept()).connect()
        } catch (e) {
          log('handshake failed:', rustCause(e))
          return
        }
        if (shuttingDown) { conn.close(0n, bytesOf('shutdown')); return }
        await serveConn(conn)
      })().catch((e) => log('connection task failed:', rustMessage(e)))
    }
  })()

  const shutdown = async (sig) => {
    if (shuttingDown) return
    shuttingDown = true
    log(`${sig}: closing ${live.size} connection(s)`)
    const dones = []
    for (const st of live.values()) { st.closeLocal(0, 'shutdown'); dones.push(st.done) }
    await Promise.race([Promise.all(dones), sleep(1000)])
    await Promise.race([ep.close(), sleep(1000)])
    process.exit(0)
  }
  process.on('SIGINT', () => { shutdown('SIGINT') })
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  await acceptLoop
  await new Promise(() => {}) // endpoint closed under us: wait for a signal
}

// ------------------------------------------------------------------------------------------------
// connect
// ------------------------------------------------------------------------------------------------
async function connect() {
  if (opts.positional.length !== 1) usageError('connect needs exactly one TICKET')
  if (alpns.length !== 1) usageError('connect takes exactly one --alpn')
  const alpn = alpns[0]
  let ticket
  try {
    ticket = EndpointTicket.fromString(opts.positional[0])
  } catch (e) {
    usageError(`bad ticket: ${rustCause(e)}`)
  }
  const useStdin = opts.flags.has('--stdin')
  if (useStdin && one('--bytes') !== undefined) usageError('--bytes and --stdin are exclusive')
  const nBytes = intOpt('--bytes', 0)
  const K = intOpt('--streams', 1, 1, 100000)
  if (useStdin && K !== 1) usageError('--stdin sends one stream: --streams must be 1')
  const uni = opts.flags.has('--uni')
  const echo = opts.flags.has('--echo')
  const nDgrams = intOpt('--datagrams', 0)
  const dgSize = intOpt('--datagram-size', 1000, 4, 65535)
  const idle = numOpt('--idle', 0)
  const timeoutS = numOpt('--timeout', 10)
  const closeCode = closeCodeOpt() ?? 0n
  const closeReason = one('--close-reason') ?? 'done'
  const json = opts.flags.has('--json')
  const relay = relayOpts()
  const waitDirect = numOpt('--wait-direct', 0)
  const hold = numOpt('--hold', 0)

  const out = {
    ok: false, remote: null, alpn, bytes: 0, echoed: 0, seconds: null, mb_per_s: null, connect_ms: null,
    rtt_ms: null, path: null, datagrams_sent: 0, datagrams_echoed: 0, closed_by_peer: null,
    started_relayed: null, direct_after_ms: null, paths: [],
  }
  let finished = false
  const finish = (kind, detail) => {
    if (finished) return
    finished = true
    const line = String(detail).replace(/\s*\n\s*/g, ' ')
    if (json) {
      const o = kind ? { ...out, ok: false, error_kind: kind, error: line } : { ...out, ok: true }
      fs.writeSync(1, JSON.stringify(o) + '\n')
    } else if (!kind) {
      fs.writeSync(1, `ok remote=${out.remote} alpn=${out.alpn} bytes=${out.bytes} echoed=${out.echoed} ` +
        `seconds=${out.seconds} mb_per_s=${out.mb_per_s} connect_ms=${out.connect_ms} ` +
        `datagrams=${out.datagrams_echoed}/${out.datagrams_sent}\n`)
    }
    if (kind) fs.writeSync(2, `${PROG}: error: ${kind}: ${line}\n`)
    process.exit(kind ? 1 : 0)
  }
  class Fail extends Error { constructor(kind, detail) { super(detail); this.kind = kind } }
  const failFrom = (what, e) => {
    if (e instanceof Fail) return e
    const msg = rustMessage(e)
    const kind = classify(msg)
    return new Fail(kind, `${what}: ${rustCause(e)}`)
  }

  const whole = timeoutS + idle + waitDirect + hold + 120
  setTimeout(() => finish('timeout', `whole run exceeded ${whole} s (timeout + idle + wait-direct + hold + 120)`), whole * 1000).unref()

  let stdinData = null
  if (useStdin) stdinData = fs.readFileSync(0)

  const addr = ticket.endpointAddr()
  const ticketRelay = addr.relayUrl()
  const direct = relay.relayOnly ? [] : addr.directAddresses()
  // dial through the ticket's relay when it names one and we have a relay at all
  const dialRelay = relay.url ? (ticketRelay ?? relay.url) : null
  if (direct.length === 0 && !dialRelay) {
    finish('unreachable', ticketRelay ? 'the ticket has only a relay address (pass --relay URL to use relays)'
      : 'the ticket has no direct address' + (relay.relayOnly ? ' (and --relay-only ignores them)' : ''))
  }
  const v4 = direct.length === 0 || direct.some((a) => !a.startsWith('['))
  const bind = one('--bind') ?? (v4 ? '127.0.0.1:0' : '[::1]:0')
  if (!splitHostPort(bind)) usageError(`--bind: not IP:PORT: ${bind}`)
  const ep = await bindEndpoint(null, bind, null, relay.url, relay.qadPort).catch((e) => finish('transport', `bind: ${rustCause(e)}`))
  await addExternalAddrs(ep).catch((e) => finish('transport', `--external-addr: ${rustCause(e)}`))
  const wantId = addr.id().toString()
  const where = [...(dialRelay ? [`relay ${dialRelay}`] : []), ...direct].join(',')

  let conn = null
  try {
    const t0 = performance.now()
    let timer
    const to = new Promise((_, rej) => { timer = setTimeout(() => rej(new Fail('timeout', `no handshake with ${where} within ${timeoutS} s`)), timeoutS * 1000) })
    conn = await Promise.race([ep.connect(new EndpointAddr(addr.id(), dialRelay, direct), bytesOf(alpn)), to])
      .catch((e) => { throw failFrom('connect', e) })
    clearTimeout(timer)
    out.connect_ms = Math.round((performance.now() - t0) * 1000) / 1000
    out.remote = conn.remoteId().toString()
    if (out.remote !== wantId) throw new Fail('key-mismatch', `server id ${out.remote} != ticket id ${wantId}`)
    const gotAlpn = Buffer.from(conn.alpn()).toString()
    if (gotAlpn !== alpn) throw new Fail('alpn', `negotiated ${JSON.stringify(gotAlpn)}, offered ${JSON.stringify(alpn)}`)
    // The selected path over time (t_ms from the start of connect), polled: the binding's watch
    // callbacks fire on a Rust thread and are not guaranteed to be delivered before exit.
    const selected = () => {
      const ps = conn.paths()
      return ps.find((p) => p.isSelected) || ps[0]
    }
    let directWaiter = null
    const notePath = () => {
      const sel = selected()
      const name = pathName(sel)
      if (!name || name === out.path) return
      out.path = name
      const t = Math.round(performance.now() - t0)
      out.paths.push({ t_ms: t, path: name })
      if (out.started_relayed === null) out.started_relayed = !!sel.isRelay
      if (sel.isIp && out.direct_after_ms === null) {
        out.direct_after_ms = t
        if (directWaiter) directWaiter()
      }
    }
    // Dialed through the relay only: the handshake ran on the relay path by construction, even if
    // the first snapshot (taken after connect() resolved) already shows a punched direct path.
    if (direct.length === 0 && dialRelay) {
      out.started_relayed = true
      const name = `relay:${new URL(dialRelay).href}` // Rust's RelayUrl form (trailing slash)
      out.paths.push({ t_ms: Math.round(out.connect_ms), path: name })
      out.path = name
    }
    notePath()
    const pathPoll = setInterval(notePath, 20)
    pathPoll.unref()
    out.rtt_ms = conn.rtt()
    if (waitDirect > 0 && out.direct_after_ms === null) {
      await Promise.race([new Promise((r) => { directWaiter = r }), sleep(waitDirect * 1000)])
    }

    const checkAlive = (what) => {
      const r = conn.closeReason()
      if (r === null) return
      const c = parseClose(r)
      if (c.by === 'peer') out.closed_by_peer = { code: c.code, reason: c.reason, kind: c.kind }
      const peerKind = c.kind === 'application' || c.code === 0 || c.reason === 'reset by peer' ? 'closed' : 'transport'
      throw new Fail(c.by === 'timeout' ? 'timeout' : c.by === 'peer' ? peerKind : 'transport',
        c.by === 'peer' ? `${what}: closed by peer: ${c.kind} code ${c.code}, reason ${JSON.stringify(c.reason)}`
          : `${what}: connection closed: ${r}`)
    }
    // a close by the peer once every stream is done is the expected end, not an error
    const closedByPeerAtEnd = () => {
      const r = conn.closeReason()
      if (r === null) return false
      const c = parseClose(r)
      if (c.by !== 'peer') return false
      out.closed_by_peer = { code: c.code, reason: c.reason, kind: c.kind }
      return true
    }
    const wrap = (what) => (e) => {
      if (e instanceof Fail) throw e
      checkAlive(what)
      throw failFrom(what, e)
    }

    if (idle > 0) {
      await sleep(idle * 1000)
      checkAlive(`after --idle ${idle}`)
    }

    // ---- streams
    const sends = []
    const t1 = performance.now()
    const total = useStdin ? stdinData.length : nBytes
    const chunkOf = (k, off, len) => (useStdin ? stdinData.subarray(off, off + len) : pattern(off, len, k))
    const writeStream = async (send, k) => {
      for (let off = 0; off < total; off += CHUNK) {
        const c = chunkOf(k, off, Math.min(CHUNK, total - off))
        await send.writeAll(toArr(c))
        out.bytes += c.length
      }
      await send.finish()
    }
    // reads a stream to its end; with verify, compares against stream k's data
    const readStream = async (recv, k, verify, what) => {
      let off = 0
      for (;;) {
        const b = await recv.read(CHUNK)
        if (b.length === 0) break
        if (verify) {
          if (off + b.length > total) throw new Fail('echo-mismatch', `${what}: echo longer than the ${total} bytes sent`)
          const exp = chunkOf(k, off, b.length)
          for (let j = 0; j < b.length; j++) {
            if (b[j] !== exp[j]) throw new Fail('echo-mismatch', `${what}: byte ${off + j} is ${b[j]}, expected ${exp[j]}`)
          }
          out.echoed += b.length
        }
        off += b.length
      }
      if (verify && off !== total) throw new Fail('echo-mismatch', `${what}: echo has ${off} bytes, sent ${total}`)
      return off
    }
    if (!uni) {
      await Promise.all(Array.from({ length: K }, async (_, k) => {
        const bi = await conn.openBi().catch(wrap(`open bidi stream ${k}`))
        sends.push(bi.send)
        await Promise.all([
          writeStream(bi.send, k).catch(wrap(`write stream ${k}`)),
          readStream(bi.recv, k, echo, `stream ${k}`).catch(wrap(`read stream ${k}`)),
        ])
      }))
    } else {
      const accepted = echo ? (async () => {
        const pending = new Set(Array.from({ length: K }, (_, k) => k))
        const bufs = []
        await Promise.all(Array.from({ length: K }, async (_, n) => {
          const recv = await conn.acceptUni().catch(wrap(`accept echo uni stream #${n}`))
          const parts = []
          let len = 0
          for (;;) {
            const b = await recv.read(CHUNK).catch(wrap(`read echo uni stream #${n}`))
            if (b.length === 0) break
            len += b.length
            if (len > total) throw new Fail('echo-mismatch', `echo uni stream #${n}: longer than the ${total} bytes sent`)
            parts.push(Buffer.from(b))
          }
          bufs.push(Buffer.concat(parts, len))
        }))
        for (const buf of bufs) {
          let match = -1
          for (const k of pending) {
            if (buf.length === total && (total === 0 || buf[0] === ((k) & 0xff)) && buf.equals(useStdin ? stdinData : pattern(0, total, k))) { match = k; break }
          }
          if (match < 0) throw new Fail('echo-mismatch', `an echoed uni stream of ${buf.length} bytes matches none of the ${pending.size} unmatched streams sent`)
          pending.delete(match)
          out.echoed += buf.length
        }
      })() : Promise.resolve()
      await Promise.all([accepted, ...Array.from({ length: K }, async (_, k) => {
        const send = await conn.openUni().catch(wrap(`open uni stream ${k}`))
        sends.push(send)
        await writeStream(send, k).catch(wrap(`write uni stream ${k}`))
      })])
    }
    // everything we sent is acknowledged (a close would discard unsent data)
    await Promise.all(sends.map((s) => s.stopped().catch(() => null)))
    const secs = (performance.now() - t1) / 1000
    out.seconds = Math.round(secs * 1e6) / 1e6
    out.mb_per_s = Math.round((out.bytes / 1e6 / Math.max(secs, 1e-6)) * 1000) / 1000
    const peerClosed = closedByPeerAtEnd()
    if (!peerClosed || nDgrams > 0) checkAlive('after the streams')

    // ---- datagrams
    if (nDgrams > 0) {
      const max = conn.maxDatagramSize()
      if (max === null) throw new Fail('transport', 'the peer does not accept datagrams (no max_datagram_frame_size)')
      if (dgSize > max) throw new Fail('transport', `--datagram-size ${dgSize} > max datagram size ${max}`)
      const body = pattern(0, dgSize, 0)
      const seen = new Set()
      let lastSend = Infinity
      let stopRecv = false
      const receiver = (async () => {
        while (!stopRecv) {
          let d
          try { d = await conn.readDatagram() } catch { return }
          const b = Buffer.from(d)
          if (b.length !== dgSize) continue
          const j = b.readUInt32BE(0)
          if (j >= nDgrams || seen.has(j)) continue
          if (b.subarray(4).equals(body.subarray(4))) seen.add(j)
        }
      })()
      for (let j = 0; j < nDgrams; j++) {
        const d = Buffer.from(body)
        d.writeUInt32BE(j, 0)
        await conn.sendDatagramWait(toArr(d)).catch(wrap(`send datagram ${j}`))
        out.datagrams_sent++
      }
      lastSend = performance.now()
      while (seen.size < nDgrams && performance.now() - lastSend < 2000) await sleep(20)
      stopRecv = true
      out.datagrams_echoed = seen.size
      void receiver
      checkAlive('after the datagrams')
    }

    // ---- --hold S: keep the connection (and the path watch) up a while longer
    if (hold > 0) {
      await sleep(hold * 1000)
      checkAlive(`after --hold ${hold}`)
    }
    notePath()
    out.rtt_ms = conn.rtt()

    // ---- close (give a server that closes after the last echo a moment to do so first)
    const peerClose = peerClosed ? conn.closeReason() : await Promise.race([conn.closed(), sleep(500).then(() => null)])
    if (peerClose !== null) {
      const c = parseClose(peerClose)
      if (c.by === 'peer') out.closed_by_peer = { code: c.code, reason: c.reason, kind: c.kind }
      else if (c.by === 'timeout') throw new Fail('timeout', `connection timed out: ${peerClose}`)
    } else {
      conn.close(closeCode, bytesOf(closeReason))
    }
    await Promise.race([ep.close(), sleep(1000)])
    finish(null)
  } catch (e) {
    const f = failFrom('connect', e)
    if (conn) { try { conn.close(closeCode, bytesOf(closeReason)) } catch { /* already closed */ } }
    await Promise.race([ep.close().catch(() => {}), sleep(300)])
    finish(f.kind, f.message)
  }
}

if (opts.cmd === 'listen') await listen()
else await connect()
