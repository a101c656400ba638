/**
 * Admission of upstream Gemini calls, per Gemini key and model, shared by every worker process
 * through Redis: each call asks before it goes, so the project's quota is spent evenly instead of
 * being stormed and answered with 429s.
 *
 * The pacing is GCRA (the "virtual scheduling" form of a token bucket): one time per model, `tat`,
 * moves forward by 1/rate for each admitted request (and a second one by tokens/TPM when an input
 * token quota is known), with a burst of two intervals. A call is admitted when its turn is within
 * the horizon of its lane: interactive requests may book a turn up to HORIZON_MS ahead (the worker
 * waits that short while, then calls), batch lines only a turn that is due now, so interactive
 * work always goes first and batch lines take what it leaves. A call that is not admitted goes
 * back to the queue (holding no worker slot) until its turn could be near, spread at random over
 * the time its tenant's waiting calls need, so they do not all come back at once.
 *
 * Under contention each tenant also has a virtual time advancing by n/rate per admitted call (n
 * tenants asking): a tenant ahead of its share by more than the horizon yields while another
 * tenant is waiting, and never otherwise, so a tenant alone gets the whole rate.
 *
 * The limits are the configured quota (FERRY_GEMINI_RPM, FERRY_GEMINI_TPM), or learned from what
 * Gemini accepts, by additive-increase/multiplicative-decrease (AIMD) on the admitted rate, shared
 * by every worker through Redis (scripts/admission.ts):
 * - until the first 429 no limit is known, and each process keeps only a slow-start window of calls
 *   in flight, so a first contact cannot storm the quota;
 * - a 429 cuts the rate to BACKOFF of the rate being admitted (or of what got through, when that is
 *   far less: pauses were doing the throttling), once per refusal episode, whether or not the 429
 *   states its limit; a first 429 halves the rate this project's workers admitted over the last
 *   seconds (counted per second in Redis), or starts at the limit it states, less a margin;
 * - a stated limit (QuotaFailure's quotaValue) is an upper bound, not the answer: a project shared
 *   with other clients leaves less than it states, and a raised quota states itself only when it
 *   refuses, so it caps the rate's growth for STATED_CAP_MS only;
 * - turns booked ahead before a 429 are given up rather than sent into the refusal;
 * - while calls wait for turns the rate grows back, in time: quickly to just under the rate last
 *   refused (or the limit stated), then probing beyond it faster the longer no 429 comes, so a
 *   raised quota is found in seconds and a lowered one by the next cuts;
 * - it grows only to a quarter above the calls admitted in the last second: a rate the workers do
 *   not use says nothing of the quota. (Without this, workers starved of CPU let it grow to twice
 *   the quota, then stormed it when the CPU came back: 26% of calls refused in a loaded test run.)
 * - a 429 for a call admitted before the last cut cuts nothing: it was refused at the old rate (on
 *   a loaded machine such 429s arrive seconds late, and each cut the rate again, to a tenth);
 * - the slow start's window doubles with time only while answers come (a stall, the model's or a
 *   starved process's, holds it), so calls sent before a first 429 is seen stay few.
 * Traced on a machine with two busy loops beside two Ferry instances: 25% of calls refused before
 * these three rules, 2–11% after (a first contact under such load still costs a few dozen).
 * Every 429 also pauses the model for Gemini's RetryInfo delay (a short one when it gives none and
 * a rate is known: the cut does the work). Learned limits stay in Redis, so a restarted or new
 * worker starts from them.
 *
 * Why AIMD on the admitted rate: the previous learner cut a fifth from the success rate observed
 * before a 429; with seconds of model latency the first 429s come before any success is seen, so it
 * learned nothing and the workers' slow start stormed the quota again: with 429s that state no limit
 * it reached 0.53 of the quota-bound ideal with 22% of calls refused (bench quota, 2 s latency, 20/s).
 * The admitted rate is known at once and is what the upstream judged; growth in time rather than
 * per call keeps the probe gentle at any rate.
 *
 * Written here rather than taken from a library: BullMQ's limiter is per queue with a fixed rate,
 * and the rate-limiter packages count requests per window; none learns a limit, weighs input
 * tokens, books turns ahead or shares fairly between tenants and lanes.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { withScripts, type Scripted } from './scripts/index.js';
import { nowSeconds } from './time.js';

/** How far ahead an interactive call may book its turn (the worker waits this long at most). */
export const HORIZON_MS = 1000;
/** How long a worker trusts "no limit known" for a model before asking Redis again. */
const FREE_CACHE_MS = 1000;
/** Calls refused for quota back off at least this long while no rate is known (Gemini's RetryInfo usually says more). */
const MIN_PAUSE_MS = 500;
/** With a rate known and no RetryInfo, the pause is this many turns: the cut does the rest. */
const PAUSE_TURNS = 2;
/** Fewer admissions than this say too little to learn a rate from. */
const MIN_OBSERVED = 10;
/** A 429 cuts the admitted rate to this share of itself. */
const BACKOFF = 0.8;
/** Seconds over which the rate the upstream accepts is measured, to bound a cut when it is well below the admitted one. */
const ACCEPTED_WINDOW_S = 5;
/** How long a stated limit caps the rate before it is probed beyond (a raised tier states more only when refused). */
const STATED_CAP_MS = 3_000;
/** A stated limit is used less this share, for the calls whose timing bunches on the way. */
const STATED_MARGIN = 0.97;
/**
 * Calls in flight per model and process while no limit is known: the window starts here, widens by
 * one with each success and, once calls are answered, doubles every SLOW_START_DOUBLING_MS, so a quota is met by a few dozen
 * calls (a 429 answers at once, before any model latency) and a model with none is soon unbounded.
 */
const SLOW_START_WINDOW = 16;
const SLOW_START_DOUBLING_MS = 500;
/** With no answer for this long, the slow start's window stops doubling. */
const SLOW_START_STALL_MS = 1000;
/** A window a 429 narrowed stays so this long before it doubles again. */
const SLOW_START_HOLD_MS = 2000;
/** Refused calls come back over this share of the time their turns take at the full rate. */
const RETURN_PRESSURE = 0.75;
/**
 * And within this long: a rate learned low (a first 429 met while the workers were starved)
 * recovers in seconds, and the calls it sent far away must be back to take the turns.
 */
const RETURN_SPREAD_MAX_MS = 15_000;

export type Lane = 'interactive' | 'batch';

export interface AdmissionRequest {
  model: string;
  tenant: string;
  lane: Lane;
  /** Estimated input tokens (corrected after the call from `usageMetadata`). */
  tokens: number;
  jobId: string;
}

/** `go`: call after `waitMs` (≤ the horizon). Otherwise come back in `retryMs`, holding nothing. */
export type Decision =
  | { go: true; waitMs: number; paced: boolean; inFlight: boolean; bookedAt?: number; bound?: boolean }
  | { go: false; retryMs: number; why: 'quota' | 'paused' | 'slow_start' };

export interface AdmissionOptions {
  /** The Gemini key (only a digest of it names the Redis keys: limits are per project). */
  apiKey: string;
  /** Requests per minute per model; 0 = learn. */
  rpm: number;
  /** Input tokens per minute per model; 0 = learn (from a 429 that states it). */
  tpm: number;
}

export interface AdmissionState {
  model: string;
  /** Requests per second admitted (configured or learned); null = no limit known. */
  rate: number | null;
  learned: boolean;
  pausedForMs: number;
  waiting: number;
}

/** The stated per-minute limits of a quota 429 (Gemini's QuotaFailure), when it names them. */
export interface QuotaRefusal {
  retryAfterMs: number | null;
  limits: { rpm?: number; tpm?: number };
  /** When the refused call was admitted (its decision's `bookedAt`): one admitted before the last cut says nothing new. */
  admittedAt?: number;
}

export class Admission {
  private readonly redis: Scripted;
  private readonly project: string;
  /** Models with no limit known, and when that was last confirmed. */
  private readonly free = new Map<string, number>();
  /** Slow start while no limit is known: calls in flight here per model, and the window. */
  private readonly inFlight = new Map<string, number>();
  private readonly window = new Map<string, number>();
  /** When the window starts doubling again (after a 429 narrowed it). */
  private readonly widenFrom = new Map<string, number>();
  /** Calls admitted in slow start per model per second here, flushed once a second: the admitted rate at a first 429. */
  private readonly counts = new Map<string, number>();
  /** Calls answered per model per second here, flushed with them: the rate the upstream accepts. */
  private readonly accepted = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
  /** When this process first, and last, had an answer (success or 429) for a model: the slow start's clock. */
  private readonly firstAnswered = new Map<string, number>();
  private readonly lastAnswered = new Map<string, number>();
  /** When this process last had a call refused for quota, per model. */
  private readonly lastRefused = new Map<string, number>();
  private readonly flusher: NodeJS.Timeout;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly opts: AdmissionOptions,
  ) {
    this.redis = withScripts(redis);
    this.project = createHash('sha256').update(opts.apiKey).digest('hex').slice(0, 12);
    this.flusher = setInterval(() => void this.flushCounts().catch(() => {}), 1000);
    this.flusher.unref();
  }

  private key(model: string, part = '') {
    return this.keys.quota(this.project, model, part);
  }

  private get cfgRate() {
    return this.opts.rpm / 60;
  }

  /** Asks for a turn. A `go` with `inFlight` must be followed by `finished` when the call ends. */
  async admit(req: AdmissionRequest): Promise<Decision> {
    if (!this.firstSeen.has(req.model)) this.firstSeen.set(req.model, Date.now());
    const now = Date.now();
    const seen = this.free.get(req.model);
    if (seen === undefined || Date.now() - seen >= FREE_CACHE_MS) {
      // flag: for an admitted call, whether it was contended; for a refused one, whether the model is paused.
      const [code, ms, waiting, interval, flag] = await this.redis.ferryAdmit(
        this.key(req.model),
        this.key(req.model, ':waiting'),
        this.key(req.model, ':tenants'),
        this.key(req.model, `:waiting:${req.tenant}`),
        now,
        req.lane === 'interactive' ? 'i' : 'b',
        req.tenant,
        req.jobId,
        Math.max(1, Math.round(req.tokens)),
        this.cfgRate,
        this.opts.tpm,
        HORIZON_MS,
      );
      if (code !== 2) {
        this.free.delete(req.model);
        if (code === 1) {
          const f = Number(flag);
          return { go: true, waitMs: Number(ms), paced: (f & 1) === 1, bound: (f & 2) === 2, inFlight: false, bookedAt: now };
        }
        // Its tenant's waiting calls come back over a little less than the turns they need at the
        // full rate: a few find their turn taken and go round again, but no turn is left idle for
        // want of a caller (with other tenants waiting, fairness at admission shares the turns).
        const spread = Math.min(Number(waiting) * (Number(interval) || 1000) * RETURN_PRESSURE, RETURN_SPREAD_MAX_MS);
        return { go: false, retryMs: Math.round(Number(ms) + Math.random() * spread), why: flag === 1 ? 'paused' : 'quota' };
      }
      // Unless a 429 came meanwhile: the answer is stale, and the next call asks Redis again.
      if ((this.lastRefused.get(req.model) ?? 0) < now) this.free.set(req.model, Date.now());
    }
    return this.slowStart(req.model);
  }

  private answered(model: string) {
    const now = Date.now();
    if (!this.firstAnswered.has(model)) this.firstAnswered.set(model, now);
    this.lastAnswered.set(model, now);
  }

  /** This process's slow-start window: its own size, or the doubled initial one, whichever is wider. */
  private slowStartWindow(model: string): number {
    // Until a first answer, time says nothing: a slow model (or a starved process) would otherwise
    // open the window to hundreds of calls before the first 429 could narrow it.
    const since = this.widenFrom.get(model) ?? this.firstAnswered.get(model);
    if (since === undefined) return this.window.get(model) ?? SLOW_START_WINDOW;
    // Time counts only while answers come: a stall (the model, or this process starved of CPU)
    // holds the window where it is, so the calls sent meanwhile cannot storm a quota unseen.
    const until = Math.min(Date.now(), (this.lastAnswered.get(model) ?? since) + SLOW_START_STALL_MS);
    const doublings = Math.floor((until - since) / SLOW_START_DOUBLING_MS);
    const doubled = doublings < 0 ? 0 : SLOW_START_WINDOW * 2 ** Math.min(20, doublings);
    return Math.max(this.window.get(model) ?? SLOW_START_WINDOW, doubled);
  }

  /** No limit known: a window of calls in flight here, widened by each success. */
  private slowStart(model: string): Decision {
    const n = this.inFlight.get(model) ?? 0;
    const window = this.slowStartWindow(model);
    if (n >= window) return { go: false, retryMs: 50 + Math.round(Math.random() * 200), why: 'slow_start' };
    this.inFlight.set(model, n + 1);
    this.counts.set(model, (this.counts.get(model) ?? 0) + 1);
    return { go: true, waitMs: 0, paced: false, inFlight: true, bookedAt: Date.now() };
  }

  /**
   * Whether a turn booked ahead still stands when it comes: not if a 429 has since paused the
   * model or cut its rate. The turn was given at a rate the upstream has just refused, so the call
   * would be refused too; it goes back to wait for a turn at the new rate instead.
   */
  async stillStands(model: string, decision: Decision): Promise<boolean> {
    if (!decision.go || decision.bookedAt === undefined) return true;
    const [paused, cut] = await this.redis.hmget(this.key(model), 'paused', 'cut');
    return Number(paused ?? 0) <= Date.now() && Number(cut ?? 0) <= decision.bookedAt;
  }

  /** The call admitted by `decision` ended, whatever its outcome. */
  finished(req: AdmissionRequest, decision: Decision): void {
    if (decision.go && decision.inFlight) this.inFlight.set(req.model, Math.max(0, (this.inFlight.get(req.model) ?? 1) - 1));
  }

  /** After a call that Gemini answered: widen the slow start, learn up, correct the token estimate. */
  async succeeded(req: AdmissionRequest, decision: Decision, promptTokens: number | undefined): Promise<void> {
    this.accepted.set(req.model, (this.accepted.get(req.model) ?? 0) + 1);
    this.answered(req.model);
    if (!decision.go) return;
    if (decision.inFlight) this.window.set(req.model, (this.window.get(req.model) ?? SLOW_START_WINDOW) + 1);
    const extra = promptTokens === undefined ? 0 : promptTokens - req.tokens;
    const correct = extra !== 0 && !decision.inFlight;
    // A learned rate grows only where it binds: calls that merely wait (parked after a 429, say) say nothing of it.
    const grow = this.opts.rpm <= 0 && decision.bound === true;
    if (!correct && !grow) return;
    await this.redis.ferryAdmitSucceeded(this.key(req.model), Date.now(), this.cfgRate, extra, this.opts.tpm, grow ? '1' : '0');
  }

  /** After Gemini refused a call for quota: pause the model for its delay, and learn its limit. */
  async refused(model: string, refusal: QuotaRefusal): Promise<void> {
    this.free.delete(model);
    this.answered(model);
    this.lastRefused.set(model, Date.now());
    this.narrowSlowStart(model);
    await this.flushCounts();
    const [admitted, accepted, rate] = await Promise.all([
      this.perSecond(model, 'admitted', 4),
      this.perSecond(model, 'ok', ACCEPTED_WINDOW_S),
      this.redis.hget(this.key(model), 'rate'),
    ]);
    await this.redis.ferryAdmitRefused(
      this.key(model),
      Date.now(),
      this.pauseMs(refusal, rate === null ? null : Number(rate)),
      this.cfgRate,
      admitted,
      refusal.limits.rpm ?? 0,
      refusal.limits.tpm ?? 0,
      this.opts.tpm,
      STATED_MARGIN,
      BACKOFF,
      STATED_CAP_MS,
      accepted,
      refusal.admittedAt ?? Date.now(),
    );
  }

  /**
   * A 429 while no limit is known halves this process's slow-start window and restarts its
   * widening: a 429 comes back at once, so without this each refused call's place in the window
   * would be taken again at once, and the first contact would storm the quota until a rate is set.
   */
  private narrowSlowStart(model: string) {
    this.window.set(model, Math.max(4, Math.floor(this.slowStartWindow(model) / 2)));
    this.widenFrom.set(model, Date.now() + SLOW_START_HOLD_MS);
  }

  /** Gemini's RetryInfo delay; without one, a couple of turns at a known rate, else a short pause. */
  private pauseMs(refusal: QuotaRefusal, rate: number | null): number {
    if (refusal.retryAfterMs !== null) return Math.max(refusal.retryAfterMs, 50);
    const known = this.cfgRate > 0 ? this.cfgRate : rate;
    return known ? Math.min(Math.max((PAUSE_TURNS * 1000) / known, 50), MIN_PAUSE_MS) : MIN_PAUSE_MS;
  }

  /**
   * Calls per second across every worker, counted as `kind` (admitted in slow start, or answered),
   * over the last `seconds` seconds and this one so far, or the time since this process first saw
   * the model if shorter (at least one second: a first burst is not a rate); 0 when fewer than
   * MIN_OBSERVED calls are known.
   */
  private async perSecond(model: string, kind: 'admitted' | 'ok', seconds: number): Promise<number> {
    const t = Date.now();
    const sec = Math.floor(t / 1000);
    const keys = Array.from({ length: seconds + 1 }, (_, k) => this.key(model, `:${kind}:${sec - k}`));
    const calls = (await this.redis.mget(keys)).reduce((sum, c) => sum + Number(c ?? 0), 0);
    const span = Math.min(seconds + (t % 1000) / 1000, (t - (this.firstSeen.get(model) ?? t)) / 1000);
    return calls < MIN_OBSERVED ? 0 : calls / Math.max(span, 1);
  }

  private async flushCounts(): Promise<void> {
    const sec = nowSeconds();
    const counts = [
      ...[...this.counts].map(([model, n]) => ({ model, n, kind: 'admitted' })),
      ...[...this.accepted].map(([model, n]) => ({ model, n, kind: 'ok' })),
    ];
    this.counts.clear();
    this.accepted.clear();
    // One transaction per count: each model's keys share a slot, different models' need not.
    await Promise.all(
      counts.map(({ model, n, kind }) =>
        this.redis
          .multi()
          .incrby(this.key(model, `:${kind}:${sec}`), n)
          .expire(this.key(model, `:${kind}:${sec}`), 15)
          .exec(),
      ),
    );
  }

  /** The state of every model this process has asked about (for /metrics). */
  async states(): Promise<AdmissionState[]> {
    return Promise.all([...this.firstSeen.keys()].map((m) => this.state(m)));
  }

  /** What a model's admission looks like now. */
  async state(model: string): Promise<AdmissionState> {
    const [rate, paused] = await this.redis.hmget(this.key(model), 'rate', 'paused');
    const waiting = await this.redis.zcard(this.key(model, ':waiting'));
    const learned = this.opts.rpm <= 0;
    return {
      model,
      rate: learned ? (rate === null ? null : Number(rate)) : this.cfgRate,
      learned,
      pausedForMs: Math.max(0, Number(paused ?? 0) - Date.now()),
      waiting,
    };
  }

  close(): void {
    clearInterval(this.flusher);
  }
}
