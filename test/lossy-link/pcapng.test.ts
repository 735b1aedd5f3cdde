/** pcapng writer/reader round trip, synthesised IP/UDP headers, and tshark's opinion when it is installed. */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addressBytes, decodeUdp, formatAddress, synthesizeUdp } from '../../tools/lossy-link/ip.js'
import { LINKTYPE_RAW, PcapngWriter, readPcapng } from '../../tools/lossy-link/pcapng.js'

const hasTshark = (() => {
  try {
    execFileSync('tshark', ['-v'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

const dir = mkdtempSync(join(tmpdir(), 'lossy-link-pcap-'))

t.test('IPv6 address text <-> bytes', async (t) => {
  for (const a of ['::1', '2001:db8::1', 'fe80::1:2:3', '::', '2001:db8:0:0:1::1']) {
    t.equal(formatAddress(addressBytes(a)), formatAddress(addressBytes(formatAddress(addressBytes(a)))), a)
  }
  t.equal(formatAddress(addressBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1')
  t.equal(formatAddress(addressBytes('::ffff:10.0.0.1')), '10.0.0.1', 'v4-mapped becomes IPv4')
})

t.test('synthesised IPv4 and IPv6 UDP decode back', async (t) => {
  const payload = Buffer.from('pigeon says hi')
  const v4 = decodeUdp(synthesizeUdp({ address: '10.1.2.3', port: 5555 }, { address: '127.0.0.1', port: 9000 }, payload))
  t.same([v4.ipVersion, v4.src, v4.dst, v4.headerChecksumOk], [4, { address: '10.1.2.3', port: 5555 }, { address: '127.0.0.1', port: 9000 }, true])
  t.same(Buffer.from(v4.payload), payload)
  const v6 = decodeUdp(synthesizeUdp({ address: '::1', port: 1 }, { address: '2001:db8::7', port: 2 }, payload))
  t.same([v6.ipVersion, v6.src.address, v6.dst.address], [6, '::1', '2001:db8::7'])
  t.same(Buffer.from(v6.payload), payload)
})

t.test('writer -> reader round trip: interfaces, timestamps, flags, comments, odd lengths', async (t) => {
  const path = join(dir, 'rt.pcapng')
  const w = new PcapngWriter(path, [{ name: 'client-side', description: 'c' }, { name: 'server-side' }])
  const packets = [
    { interfaceId: 0, timestampUs: 1_700_000_000_123_456, data: Uint8Array.of(0x45, 1, 2), direction: 'inbound' as const },
    { interfaceId: 1, timestampUs: 1_700_000_000_223_456, data: new Uint8Array(1001).fill(7), direction: 'outbound' as const, comment: 'lossy-link: duplicate' },
    { interfaceId: 1, timestampUs: 1_700_000_001_000_000, data: new Uint8Array(0) },
  ]
  for (const p of packets) w.write(p)
  w.close()
  const cap = readPcapng(readFileSync(path))
  t.equal(cap.application, 'pigeon lossy-link')
  t.same(cap.interfaces.map((i) => [i.name, i.linkType, i.tsResolution]), [['client-side', LINKTYPE_RAW, 6], ['server-side', LINKTYPE_RAW, 6]])
  t.equal(cap.packets.length, 3)
  cap.packets.forEach((p, i) => {
    t.equal(p.interfaceId, packets[i].interfaceId)
    t.equal(p.timestampUs, packets[i].timestampUs)
    t.same(Buffer.from(p.data), Buffer.from(packets[i].data))
    t.equal(p.direction, packets[i].direction)
  })
  t.same(cap.packets[1].comments, ['lossy-link: duplicate'])
})

t.test('tshark reads our capture: addresses, ports, directions, valid checksums', { skip: hasTshark ? false : 'tshark not installed' }, async (t) => {
  const path = join(dir, 'ts.pcapng')
  const w = new PcapngWriter(path, [{ name: 'client-side' }, { name: 'server-side' }])
  w.write({ interfaceId: 0, timestampUs: 1e15, direction: 'inbound', data: synthesizeUdp({ address: '127.0.0.1', port: 40000 }, { address: '127.0.0.1', port: 9000 }, Buffer.from('abc')) })
  w.write({ interfaceId: 1, timestampUs: 1e15 + 5, direction: 'outbound', comment: 'lossy-link: corrupted', data: synthesizeUdp({ address: '::1', port: 40001 }, { address: '::1', port: 7000 }, Buffer.from('abcd')) })
  w.close()
  const out = execFileSync('tshark', [
    '-r', path, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|',
    '-e', 'frame.interface_name', '-e', 'frame.p2p_dir', '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'udp.srcport', '-e', 'udp.dstport',
    '-e', 'ip.checksum.status', '-e', 'udp.checksum.status', '-e', 'frame.comment', '-e', 'data',
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')
  // checksum status: 1 good, 3 not present (UDP over IPv4 may omit it; over IPv6 it is required and must be good)
  t.same(out, [
    'client-side|1|127.0.0.1||40000|9000|1|3||616263',
    'server-side|0||::1|40001|7000||1|lossy-link: corrupted|61626364',
  ], 'fields as Wireshark decodes them')
})
