#!/usr/bin/env python3
# Sends one forged ICMP "destination unreachable, port unreachable" per given
# port, as if BACKEND_IP had answered a datagram from LOCAL_IP:PORT to
# BACKEND_IP:BACKEND_PORT: what an attacker on the path (or the kernel, when
# the recursor restarts) sends to a connected upstream socket. The kernel
# matches the quoted IP and UDP headers to the socket and sets its error.
# Needs root (CAP_NET_RAW). Usage: forge-icmp.py LOCAL_IP BACKEND_IP BACKEND_PORT PORT [PORT...]
import socket
import struct
import sys

from inet_checksum import checksum  # test/helpers/inet_checksum.py, beside this script


def main() -> None:
    local, backend, bport = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ports = [int(p) for p in sys.argv[4:]]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    for port in ports:
        # the datagram the error quotes: ampguard's query to the backend
        inner_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 12, 0, 0, 64, socket.IPPROTO_UDP, 0,
                               socket.inet_aton(local), socket.inet_aton(backend))
        inner_ip = inner_ip[:10] + struct.pack("!H", checksum(inner_ip)) + inner_ip[12:]
        inner_udp = struct.pack("!HHHH", port, bport, 8 + 12, 0)
        body = inner_ip + inner_udp + b"\0" * 12
        icmp = struct.pack("!BBHI", 3, 3, 0, 0) + body
        icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
        raw.sendto(icmp, (local, 0))
    print(len(ports))


main()
