// The one source of ampguard's configuration keys, types, defaults, ranges,
// descriptions and of which keys SIGHUP may change (`reloadable`). The TypeScript
// type, config/ampguard.yaml and config/reference.md are all derived from it.
import { z } from 'zod';
import { parseHostPort } from './address.js';
import { parseRate } from './rate.js';
import { parseCidr } from '../net/cidr.js';

declare module 'zod' {
  interface GlobalMeta {
    /** SIGHUP applies a new value without a restart */
    reloadable?: boolean;
  }
}

const hostPort = z
  .string()
  .refine((s) => parseHostPort(s) !== null, { message: 'expected "IP:port" (IPv6 as "[::1]:53")' });

const rate = z.string().refine((s) => parseRate(s) !== null, {
  message: 'expected hashlimit syntax N[b|kb|mb]/(sec|min|hour|day), e.g. "50kb/min" or "1000/sec"',
});

const cidr = z.string().refine((s) => parseCidr(s) !== null, { message: 'expected an IP or CIDR, e.g. "192.0.2.0/24"' });

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const backend = z.strictObject({
  address: hostPort.meta({ description: 'recursor address, "IP:port"' }),
  weight: int(1, 1000).default(1).meta({ description: 'share of queries relative to the other backends' }),
  proxy_protocol: z.boolean().default(false).meta({
    description: 'prefix queries with a PROXY v2 header so the recursor sees the real client (PowerDNS: proxy-protocol-from)',
  }),
});

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      udp: z.array(hostPort).default(['127.0.0.1:5353']).meta({ description: 'UDP listen addresses' }),
      tcp: z.array(hostPort).default(['127.0.0.1:5353']).meta({ description: 'TCP listen addresses' }),
    })
    .meta({ description: 'where ampguard serves DNS' })
    .prefault({}),
  backends: z
    .array(backend)
    .min(1)
    .optional()
    .meta({ description: 'recursors to forward to; default: the first nameserver in /etc/resolv.conf, port 53' }),
  workers: int(0, 256).default(0).meta({
    description: 'processes serving DNS (Node cluster); 0: one per CPU. Budgets and blocks are shared between them',
  }),
  backend_timeout_ms: int(10, 60_000).default(2000).meta({
    description: 'a query unanswered by the backend for this long gets backend_timeout_action',
    reloadable: true,
  }),
  backend_timeout_action: z.enum(['servfail', 'drop']).default('servfail').meta({
    description: 'what the client gets when the backend does not answer in time',
    reloadable: true,
  }),
  max_in_flight: int(1, 65_535).default(65_535).meta({
    description: 'outstanding UDP queries per backend; beyond it queries are dropped (reason overload)',
  }),
  udp_io: z.enum(['auto', 'native', 'dgram']).default('auto').meta({
    description:
      'UDP socket I/O: native (the batched recvmmsg/sendmmsg addon, one SO_REUSEPORT socket per worker), dgram (node:dgram), auto (native when the addon loads, else dgram with one warning)',
  }),
  health_check: z
    .strictObject({
      interval_ms: int(100, 3_600_000).default(1000).meta({ description: 'time between checks of one backend' }),
      timeout_ms: int(10, 60_000).default(1000).meta({ description: 'a check unanswered for this long fails' }),
      qname: z.string().min(1).max(253).default('.').meta({ description: 'name queried by the check' }),
      qtype: z.string().regex(/^[A-Z0-9]+$/).default('NS').meta({ description: 'type queried by the check' }),
      fall: int(1, 100).default(1).meta({ description: 'failed checks in a row that mark a backend down (dnsdist maxCheckFailures)' }),
      rise: int(1, 100).default(1).meta({ description: 'good checks in a row that mark it up again (dnsdist rise)' }),
    })
    .meta({ description: 'health checks of the backends' })
    .prefault({}),
  tcp: z
    .strictObject({
      max_connections: int(1, 1_000_000).default(1024).meta({ description: 'client TCP connections in total' }),
      max_connections_per_client: int(1, 1_000_000).default(32).meta({
        description: 'client TCP connections from one budget prefix (policy.large_response.prefix_v4/prefix_v6: /32, /64 by default)',
      }),
      max_in_flight_per_connection: int(1, 65_535).default(100).meta({
        description: 'pipelined queries one connection may have outstanding, counted per message; further messages wait (reading pauses) until answers arrive',
      }),
      idle_timeout_ms: int(100, 3_600_000).default(10_000).meta({ description: 'close a connection with nothing pending after this long' }),
      read_timeout_ms: int(100, 600_000).default(2000).meta({ description: 'a started query message must arrive whole within this time' }),
      max_buffered_bytes: int(16_384, 67_108_864).default(262_144).meta({
        description: 'answer bytes waiting for one client to read them; reading from it pauses while it does not drain, beyond this it is closed (ampguard_tcp_closed_total{reason="buffer_full"})',
      }),
      max_in_flight_per_client: int(1, 65_535).default(20).meta({
        description: 'queries of one budget prefix (policy.large_response.prefix_v4/prefix_v6) outstanding at the backends over TCP, over all its connections (split between workers); further queries wait in its connections (reading pauses), so a few prefixes sending slow queries cannot take every upstream slot',
      }),
      upstream_connections_per_backend: int(1, 1024).default(64).meta({
        description: 'TCP connections to each backend, shared by all client connections (split between workers; at most 10 queries pipelined on each, pdns_recursor\'s max-concurrent-requests-per-tcp-connection; with proxy_protocol, one per client address within this cap); keep it, summed over the ampguard instances in front of one recursor, within the recursor\'s max-tcp-clients (128 by default)',
      }),
      upstream_connections_per_client: int(1, 1024).default(2).meta({
        description: 'with proxy_protocol: upstream connections (one per client address) that one budget prefix may hold to a backend, per worker; its further addresses wait for one of them to be idle',
      }),
      upstream_queue_timeout_ms: int(0, 60_000).default(1000).meta({
        description: 'a TCP query no upstream connection can carry (all full, the cap reached) waits this long for one, served round-robin by client prefix, then fails (backend_timeout_action; ampguard_tcp_upstream_failures_total{reason="pool_full"}); 0 fails it at once',
      }),
      upstream_connect_timeout_ms: int(10, 60_000).default(1000).meta({
        description: 'a TCP connection to a backend not established within this time fails its queries (backend_timeout_action)',
      }),
    })
    .meta({ description: 'DNS over TCP from clients' })
    .prefault({}),
  policy: z
    .strictObject({
      any_to_tcp: z.boolean().default(true).meta({ description: 'answer ANY over UDP with TC=1 so the client retries over TCP', reloadable: true }),
      truncate_above: int(512, 65_535).default(1232).meta({ description: 'bytes; UDP replies above this get TC=1', reloadable: true }),
      large_response: z
        .strictObject({
          min_bytes: int(0, 65_535).default(700).meta({ description: 'UDP replies at least this long are charged to the budget', reloadable: true }),
          rate: rate.default('50kb/min').meta({
            description: 'refill rate of a prefix budget, hashlimit syntax: N[kb|mb|b]/(sec|min|hour|day) or N/sec (replies)',
            reloadable: true,
          }),
          burst: int(1, 1_000_000).default(10).meta({
            description: 'large replies a fresh prefix always gets (bucket = burst x truncate_above bytes)',
            reloadable: true,
          }),
          prefix_v4: int(8, 32).default(32).meta({ description: 'IPv4 prefix length a budget and a block are kept for (restart only: the kernel set is keyed by it; docs/enforcement.md)' }),
          prefix_v6: int(16, 128).default(64).meta({ description: 'IPv6 prefix length a budget and a block are kept for (restart only, as prefix_v4)' }),
          max_tracked: int(1, 10_000_000).default(100_000).meta({ description: 'prefixes tracked at most (least recently used go first)' }),
          aggregate: z
            .strictObject({
              enabled: z.boolean().default(true).meta({ description: 'also keep a budget per aggregate network (catches a flood spread over many addresses of one victim network)', reloadable: true }),
              prefix_v4: int(8, 32).default(24).meta({ description: 'IPv4 prefix length of an aggregate' }),
              prefix_v6: int(16, 128).default(48).meta({ description: 'IPv6 prefix length of an aggregate' }),
              multiplier: int(1, 65_536).default(8).meta({
                description: 'an aggregate gets this many times the per-prefix rate and bucket',
                reloadable: true,
              }),
              wide: z
                .strictObject({
                  enabled: z.boolean().default(true).meta({ description: 'also keep a budget per wide network around the aggregates (catches a flood spread over many /24s or /48s of one provider)', reloadable: true }),
                  prefix_v4: int(1, 31).default(16).meta({ description: 'IPv4 prefix length of a wide network (shorter than aggregate.prefix_v4, else no wide budget for IPv4)' }),
                  prefix_v6: int(1, 127).default(32).meta({ description: 'IPv6 prefix length of a wide network (shorter than aggregate.prefix_v6, else no wide budget for IPv6)' }),
                  multiplier: int(1, 1_048_576).default(16).meta({
                    description: 'a wide network gets this many times the per-prefix rate and bucket',
                    reloadable: true,
                  }),
                })
                .meta({ description: 'budgets of the wider networks (/16, /32) around the aggregates, charged with the same replies; like aggregates, answered with TC over budget and never blocked' })
                .prefault({}),
            })
            .meta({ description: 'budgets of the networks around the prefixes, charged with the same replies; over budget a network gets TC for its large replies (never a block: docs/defence.md)' })
            .prefault({}),
        })
        .meta({ description: 'per-prefix budgets for large UDP replies (iptables hashlimit semantics)' })
        .prefault({}),
      ladder: z
        .strictObject({
          enabled: z.boolean().default(true).meta({
            description: 'over budget: TC=1 first, block only a prefix that does not come back over TCP; false: block as soon as it is over budget',
            reloadable: true,
          }),
          window_ms: int(100, 3_600_000).default(2000).meta({ description: 'how long each judging window of a prefix over budget lasts', reloadable: true }),
          min_tc: int(1, 1_000_000).default(10).meta({ description: 'TC answers a window must hold before the prefix can be judged', reloadable: true }),
          followup_share: z.number().min(0).max(1).default(0.2).meta({
            description: 'above 0, a judged window without one TCP follow-up blocks the prefix (a spoofed victim sends none; one follow-up keeps it on TC, however many queries a spoofer sends in its name); 0 never blocks. A follow-up is a TCP query the backend answered that repeats a question answered with TC to the prefix in that window or the one before',
            reloadable: true,
          }),
          quiet_ms: int(100, 3_600_000).default(10_000).meta({
            description: 'a prefix or network on rung 2 comes back to rung 1 only after this long without a large reply it had to truncate (a refilled bucket does not bring it down while the flood goes on)',
            reloadable: true,
          }),
        })
        .meta({ description: 'the graduated defence of a prefix over budget: TC first, kernel block only without TCP follow-ups' })
        .prefault({}),
    })
    .meta({ description: 'the amplification defences' })
    .prefault({}),
  block: z
    .strictObject({
      mode: z.enum(['auto', 'ipset', 'nftables', 'userspace', 'off']).default('auto').meta({
        description: 'where offenders are blocked; off logs and counts only; auto: ipset when permitted, else userspace',
      }),
      set: z
        .string()
        .regex(/^[A-Za-z][A-Za-z0-9_.-]{0,23}$/, 'expected a letter, then up to 23 of A-Z a-z 0-9 _ . - (ipset names are at most 31 with "-net-v6"; nft names start with a letter)')
        .default('throttled-ips')
        .meta({ description: 'kernel set name; the IPv6 set is <set>-v6, the aggregate networks go into <set>-net and <set>-net-v6' }),
      timeout: int(1, 2_147_483).default(600).meta({ description: 'seconds an offender stays blocked', reloadable: true }),
      max_elements: int(1, 10_000_000).default(100_000).meta({ description: 'members of the kernel and userspace block tables at most' }),
      allowlist: z.array(cidr).default([]).meta({ description: 'CIDRs that are never blocked', reloadable: true }),
    })
    .meta({ description: 'what happens to a prefix over budget' })
    .prefault({}),
  firewall: z
    .strictObject({
      allow_tcp: z.array(int(1, 65_535)).default([22]).meta({
        description: 'further TCP ports `ampguard firewall` accepts (its default policy is DROP: keep your SSH port here)',
      }),
      allow_udp: z.array(int(1, 65_535)).default([]).meta({ description: 'further UDP ports `ampguard firewall` accepts' }),
    })
    .meta({ description: 'extra ports for the ruleset printed by `ampguard firewall`' })
    .prefault({}),
  metrics: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:9153').meta({ description: 'GET /metrics (Prometheus text) and GET /healthz' }),
      token_file: z.string().default('').meta({
        description:
          'the operator\'s token, which `ampguard blocks add|del` proves it holds (challenge and HMAC, never sent) before POST/DELETE /api/blocks; created 0600 with a random token at start when missing; refused when others may read it or another user owns it. Empty: $RUNTIME_DIRECTORY/token under systemd (the shipped unit: /run/ampguard/token), else ampguard.token beside the config file; a relative path is taken from the config file\'s directory',
      }),
    })
    .meta({ description: 'Prometheus metrics and health endpoint' })
    .prefault({}),
  fleet: z
    .strictObject({
      nats: z
        .array(z.string().regex(/^(nats|tls):\/\/\S+$/, 'expected a NATS URL, e.g. "nats://10.0.0.5:4222" or "tls://nats.example:4222"'))
        .default([])
        .meta({ description: 'NATS URLs the nodes of a site share evidence and verdicts through (docs/fleet.md); empty: this node stands alone' }),
      site: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 of A-Z a-z 0-9 _ - (it names NATS subjects and a bucket)')
        .default('default')
        .meta({ description: 'nodes with the same site share evidence and verdicts' }),
      node: z
        .string()
        .regex(/^[A-Za-z0-9_.-]{0,64}$/, 'expected up to 64 of A-Z a-z 0-9 _ . -')
        .default('')
        .meta({ description: "this node's name among its peers; empty: the host name" }),
      key_file: z.string().default('').meta({
        description:
          'file holding the site\'s shared secret (16 or more characters, mode 0600); messages not sealed with it are dropped and counted; required with fleet.nats; a relative path is taken from the config file\'s directory',
      }),
    })
    .superRefine((f, ctx) => {
      if (f.nats.length > 0 && f.key_file === '') ctx.addIssue({ code: 'custom', path: ['key_file'], message: 'required when fleet.nats is set: the site key that seals every fleet message' });
    })
    .meta({ description: 'several nodes of one site sharing evidence and verdicts over NATS (docs/fleet.md)' })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').meta({
        description: 'pino log level',
        reloadable: true,
      }),
    })
    .meta({ description: 'logging (pino JSON on stdout)' })
    .prefault({}),
});

/** The validated configuration, exactly as the schema produces it. */
export type Config = z.output<typeof configSchema>;
