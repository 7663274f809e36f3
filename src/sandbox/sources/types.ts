import type { Lifetime } from '../../core/context.js';

export interface IssueRequest {
  audience: string;
  requestedSeconds: number;
  /**
   * Told once, when the token service's first answer (or silence) is worth another attempt:
   * what went wrong and how long oz may keep trying. The caller decides whether anyone is watching.
   */
  onRetry?: (what: string, boundSeconds: number) => void;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
  claims: Record<string, unknown>;
  /** Known for the embedded issuer; a remote issuer does not say why it capped. */
  lifetime?: Lifetime;
}
