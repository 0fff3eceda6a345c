// relay_peer.mjs — a Rust iroh 1.0.2 endpoint (npm @number0/iroh 1.1.0) that talks to another one
// only through a given relay server. Used by tests/integration/test_relay_interop.py.
//
//   node relay_peer.mjs server --relay URL [--secret HEX] [--qad] [--token T] [--bind IP:PORT]
//       Binds on 127.0.0.1 with URL as the only relay; prints `ID <hex>` right after binding and
//       `ONLINE` once the relay is its home relay. Accepts ALPN test/echo/0 and echoes every bi
//       stream byte for byte. Runs until killed.
//   node relay_peer.mjs client --relay URL --peer ID --bytes N [--secret HEX] [--qad] [--token T]
//                              [--timeout S] [--linger S]
//       Dials EndpointAddr(ID, URL, []) — no direct addresses — opens one bi stream, sends N
//       pattern bytes, finishes, reads the echo and compares it byte for byte. Then waits --linger
//       seconds and snapshots conn.paths(). Prints ONE JSON line on stdout:
//       {ok, error?, id, connect_ms, echo_ms, bytes, mb_per_s, paths_at_connect, paths_after}
//       and exits 0 iff ok.
//
// --bind (default 127.0.0.1:0) is the endpoint's only UDP socket: binding one peer to [::1]:0 and
// the other to 127.0.0.1:0 leaves them no common address family, so every byte goes via the relay.
// Without --qad the relay is configured with no QUIC address discovery port (the relay has no
// QAD listener), so the endpoint connects to it at once instead of after the ~3 s QAD timeout.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const iroh = require(process.env.IROH_NPM || '@number0/iroh')
const { Endpoint, EndpointAddr, EndpointId, RelayMap, RelayMode, presetMinimal, setLogLevel } = iroh
if (process.env.IROH_LOG) setLogLevel(process.env.IROH_LOG)

const ECHO = Array.from(Buffer.from('test/echo/0'))
const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt }
const flag = (name) => args.includes(name)
const err = (...a) => console.error(`[relay_peer ${args[0]}]`, ...a)

function relayMode(url) {
  if (flag('--qad')) return RelayMode.customFromUrls([url])
  const map = RelayMap.empty()
  const cfg = { url }
  if (opt('--token')) cfg.authToken = opt('--token')
  map.insert(cfg)
  return RelayMode.custom(map)
}

async function bind(alpns) {
  const b = Endpoint.builder(); presetMinimal(b)
  if (alpns) b.alpns(alpns)
  const secret = opt('--secret')
  if (secret) b.secretKey(Array.from(Buffer.from(secret, 'hex')))
  b.relayMode(relayMode(opt('--relay')))
  b.bindAddr(opt('--bind', '127.0.0.1:0'))
  return await b.bind()
}

const pathSummary = (conn) => conn.paths().map(p => ({
  id: p.id, selected: p.isSelected, relay: p.isRelay, ip: p.isIp, remote: p.remoteAddr,
  rtt_ms: p.rttMs, tx: p.stats.udpTxBytes, rx: p.stats.udpRxBytes,
}))

function pattern(n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 13)) & 0xff
  return b
}

if (args[0] === 'server') {
  const ep = await bind([ECHO])
  console.log('ID', ep.id().toString())
  ep.online().then(() => console.log('ONLINE')).catch(e => err('online failed', String(e)))
  for (;;) {
    const inc = await ep.acceptNext()
    if (!inc) break
    ;(async () => {
      const conn = await (await inc.accept()).connect()
      err('accepted', conn.remoteId().toString())
      for (;;) {
        const bi = await conn.acceptBi()
        ;(async () => {
          const data = await bi.recv.readToEnd(256 << 20)
          await bi.send.writeAll(data); await bi.send.finish()
        })().catch(e => err('stream error', String(e)))
      }
    })().catch(e => err('connection ended', String(e)))
  }
} else if (args[0] === 'client') {
  const out = { ok: false, bytes: Number(opt('--bytes', '1024')) }
  const timeout = Number(opt('--timeout', '20')) * 1000
  const timer = setTimeout(() => {
    out.error = out.error || `timeout after ${timeout} ms`
    console.log(JSON.stringify(out)); process.exit(1)
  }, timeout)
  try {
    const ep = await bind(null)
    out.id = ep.id().toString()
    const addr = new EndpointAddr(EndpointId.fromString(opt('--peer')), opt('--relay'), [])
    const t0 = Date.now()
    const conn = await ep.connect(addr, ECHO)
    out.connect_ms = Date.now() - t0
    out.paths_at_connect = pathSummary(conn)
    const data = pattern(out.bytes)
    const t1 = Date.now()
    const bi = await conn.openBi()
    const reader = bi.recv.readToEnd(out.bytes + 1)
    const chunk = 1 << 20
    for (let off = 0; off < data.length; off += chunk) {
      await bi.send.writeAll(Array.from(data.subarray(off, Math.min(off + chunk, data.length))))
    }
    await bi.send.finish()
    const echo = Buffer.from(await reader)
    out.echo_ms = Date.now() - t1
    out.mb_per_s = (2 * out.bytes / 1e6) / Math.max(out.echo_ms / 1000, 1e-3)
    if (echo.length !== data.length) throw new Error(`echo length ${echo.length} != ${data.length}`)
    const bad = data.findIndex((v, i) => v !== echo[i])
    if (bad >= 0) throw new Error(`echo differs at byte ${bad}`)
    await new Promise(r => setTimeout(r, Number(opt('--linger', '0')) * 1000))
    out.paths_after = pathSummary(conn)
    out.ok = true
    conn.close(0n, Array.from(Buffer.from('done')))
    await ep.close()
  } catch (e) {
    out.error = String(e).split('\n')[0]
  }
  clearTimeout(timer)
  console.log(JSON.stringify(out))
  process.exit(out.ok ? 0 : 1)
} else {
  console.error('usage: relay_peer.mjs server|client ...')
  process.exit(2)
}
