// The health-check query: built once per backend at start with dns-packet.
import { encodeMessage } from './codec.js';
import type { RecordType } from 'dns-packet';

export function buildCheckQuery(qname: string, qtype: string): Buffer {
  return encodeMessage({
    type: 'query',
    id: 0,
    flags: 0x0100,
    questions: [{ name: qname === '.' ? '.' : qname.replace(/\.$/, ''), type: qtype as RecordType, class: 'IN' }],
  });
}
