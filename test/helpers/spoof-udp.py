#!/usr/bin/env python3
# Sends UDP datagrams with a forged IPv4 source (address and port, port 0 included)
# through a raw socket with IP_HDRINCL: Node has no raw sockets. Needs root
# (CAP_NET_RAW). Usage: spoof-udp.py SRC_IP SRC_PORT DST_IP DST_PORT HEX_PAYLOAD [COUNT]
import socket
import struct
import sys

from inet_checksum import checksum  # test/helpers/inet_checksum.py, beside this script


def main() -> None:
    src, sport, dst, dport, payload_hex = sys.argv[1:6]
    count = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    payload = bytes.fromhex(payload_hex)
    sport_n, dport_n = int(sport), int(dport)
    udp_len = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", sport_n, dport_n, udp_len, 0)
    csum = checksum(pseudo + udp + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport_n, dport_n, udp_len, csum)
    total = 20 + udp_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for _ in range(count):
        s.sendto(ip + udp + payload, (dst, 0))
    s.close()


if __name__ == "__main__":
    main()
