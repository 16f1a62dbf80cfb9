import { BREAKER_CLASSES, FAILURE_CLASSES, type FailureClass } from '../../workflows/definitions';

export type BreakerStateName = 'closed' | 'open' | 'half_open';

/** A profile's breaker as stored (one row per agent in `agent_breakers`). */
export interface BreakerState {
  state: BreakerStateName;
  /** Breaker-class failures counted in the current window (closed state). */
  failures: number;
  windowStartedAt: Date | null;
  openedAt: Date | null;
  openUntil: Date | null;
  /** The attempt let through as the half-open probe, if any. */
  probe: string | null;
}

export interface BreakerConfig {
  failureThreshold: number;
  windowSeconds: number;
  cooldownSeconds: number;
}

/**
 * An agent's reset time further away than this is not believed (no provider's window is that long): the
 * breaker's cooldown stands, and the output parsers give no reset time.
 */
export const LONGEST_RESET_MS = 31 * 24 * 3600_000;

export const DEFAULT_BREAKER: BreakerConfig = { failureThreshold: 5, windowSeconds: 60, cooldownSeconds: 60 };

export const closedBreaker = (): BreakerState => ({
  state: 'closed',
  failures: 0,
  windowStartedAt: null,
  openedAt: null,
  openUntil: null,
  probe: null,
});

/**
 * The breaker as an attempt asking at `now` would find it, for reports (GET /v1/agents, GET /metrics):
 * an open breaker whose cooldown has passed is half-open (the next attempt is its probe), and the
 * failures of a window that has ended count no more. The stored row changes only when an attempt asks.
 */
export function breakerNow(
  b: Pick<BreakerState, 'state' | 'failures' | 'windowStartedAt' | 'openUntil'>,
  now: Date,
  config: BreakerConfig,
): { state: BreakerStateName; failures: number } {
  if (b.state === 'open' && b.openUntil !== null && b.openUntil <= now)
    return { state: 'half_open', failures: b.failures };
  const windowOver =
    b.windowStartedAt === null || now.getTime() - b.windowStartedAt.getTime() > config.windowSeconds * 1000;
  return { state: b.state, failures: b.state === 'closed' && windowOver ? 0 : b.failures };
}

/** What the breaker says to an attempt asking to start. */
export type BreakerGate = { kind: 'pass' } | { kind: 'probe' } | { kind: 'open'; until: Date | null };

/**
 * Closed lets everything through. Open refuses until its cooldown has passed, then lets exactly one
 * attempt through as the probe (half-open); while that probe runs (`probeAlive`: its lease is live),
 * everything else is refused. A probe whose worker died has no live lease, so the next attempt probes.
 */
export function breakerGate(b: BreakerState, now: Date, key: string, probeAlive: boolean): BreakerGate {
  if (b.state === 'closed') return { kind: 'pass' };
  if (b.state === 'open') {
    if (b.openUntil && now < b.openUntil) return { kind: 'open', until: b.openUntil };
    return { kind: 'probe' };
  }
  if (b.probe === key || !probeAlive) return { kind: 'probe' };
  return { kind: 'open', until: null };
}

/** The breaker once the probe `key` has been let through. */
export const withProbe = (b: BreakerState, key: string): BreakerState => ({ ...b, state: 'half_open', probe: key });

/**
 * The breaker after an attempt ended with `failureClass`. The probe's success closes it; any other
 * success changes nothing (one admitted before the breaker opened says nothing of the provider now, and
 * the threshold counts failures within the window, not in a row). A breaker-class failure
 * (rate_limited, overloaded, auth) counts in the window and opens it at the threshold, or reopens a
 * half-open breaker at once; it stays open for the cooldown, or until the agent's own reset time if
 * that is later (and within LONGEST_RESET_MS: a reset years away, a misread unit, would shut the agent
 * out). The window is fixed: it starts at its first failure and ends `windowSeconds` later. Other
 * outcomes say nothing about the provider; a probe that ends so frees the probe.
 */
export function afterOutcome(
  b: BreakerState,
  failureClass: FailureClass,
  key: string,
  now: Date,
  config: BreakerConfig,
  resetAt?: Date | null,
): BreakerState {
  if (failureClass === FAILURE_CLASSES.succeeded)
    return b.state === 'half_open' && b.probe === key ? closedBreaker() : b;
  if (!BREAKER_CLASSES.includes(failureClass)) {
    return b.probe === key ? { ...b, probe: null } : b;
  }
  const cooldownEnd = new Date(now.getTime() + config.cooldownSeconds * 1000);
  const believable = resetAt && resetAt.getTime() <= now.getTime() + LONGEST_RESET_MS ? resetAt : undefined;
  const until = believable && believable > cooldownEnd ? believable : cooldownEnd;
  const open = (failures: number): BreakerState => ({
    state: 'open',
    failures,
    windowStartedAt: b.windowStartedAt,
    openedAt: now,
    openUntil: until,
    probe: null,
  });
  if (b.state === 'half_open') return open(b.failures);
  if (b.state === 'open') {
    // A run that started before the breaker opened: it may push the reopening later, never earlier.
    return b.openUntil && b.openUntil >= until ? b : { ...b, openUntil: until };
  }
  const windowOver =
    b.windowStartedAt === null || now.getTime() - b.windowStartedAt.getTime() > config.windowSeconds * 1000;
  const failures = windowOver ? 1 : b.failures + 1;
  const windowStartedAt = windowOver ? now : b.windowStartedAt;
  if (failures >= config.failureThreshold) return { ...open(failures), windowStartedAt };
  return { ...b, failures, windowStartedAt };
}
