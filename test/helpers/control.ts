// A change request as `ampguard blocks` makes it (src/operator/proof.ts): a
// nonce from the server's /api/challenge, then a proof of the token for one
// method and target. For tests that call the API directly.
import { readFileSync } from 'node:fs';
import { authorizationHeader, clientProof, newNonce } from '../../src/operator/proof.js';

export async function proofHeader(metricsPort: number, tokenFile: string, method: string, target: string): Promise<string> {
  const token = readFileSync(tokenFile, 'utf8').trim();
  const r = await fetch(`http://127.0.0.1:${metricsPort}/api/challenge?client=${newNonce()}`, { method: 'POST' });
  const { nonce } = (await r.json()) as { nonce: string };
  return authorizationHeader(nonce, clientProof(token, nonce, method, target));
}
