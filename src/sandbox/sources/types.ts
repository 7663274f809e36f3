import type { Lifetime } from '../../core/context.js';

export interface IssueRequest {
  audience: string;
  requestedSeconds: number;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
  claims: Record<string, unknown>;
  /** Known for the embedded issuer; a remote issuer does not say why it capped. */
  lifetime?: Lifetime;
}
