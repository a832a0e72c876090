// IPv4 clients of a dual-stack [::] socket arrive as "::ffff:a.b.c.d". Budgets,
// blocks and the kernel's IPv4 set must see them as the IPv4 clients they are,
// or every IPv4 client would share the budget of one IPv6 /64.

/** "a.b.c.d" for an IPv4-mapped IPv6 address, null for any other. */
export function unmapIpv4(address: string): string | null {
  return address.length > 7 && address.charCodeAt(0) === 58 && address.startsWith('::ffff:') && address.includes('.', 7)
    ? address.slice(7)
    : null;
}
