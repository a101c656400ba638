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
 * The limits are the configured quota (FERRY_GEMINI_RPM, FERRY_GEMINI_TPM), or learned. Learned:
 * no limit until the first 429 (each process then only keeps a slow-start window of calls in
 * flight, so a first contact cannot storm the quota); a 429 that states its per-minute limit
 * (QuotaFailure's quotaValue, as Gemini's do) sets it, less a margin; one that does not cuts the
 * rate by a fifth, starting from the success rate observed before it. A learned rate grows while
 * calls wait for it, quickly up to the rate last refused and slowly beyond, so a raised quota is
 * found again. Every 429 also pauses the model for Gemini's RetryInfo delay. Learned limits stay
 * in Redis, so a restarted or new worker starts from them.
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
/** Calls refused for quota back off at least this long (Gemini's RetryInfo usually says more). */
const MIN_PAUSE_MS = 500;
/** Fewer successes than this say too little to learn a rate from. */
const MIN_OBSERVED = 10;
/** A stated limit is used less this share, for the calls whose timing bunches on the way. */
const STATED_MARGIN = 0.97;
/**
 * Calls in flight per model and process while no limit is known: the window starts here, widens by
 * one with each success and doubles every SLOW_START_DOUBLING_MS, so a quota is met by a few dozen
 * calls (a 429 answers at once, before any model latency) and a model with none is soon unbounded.
 */
const SLOW_START_WINDOW = 16;
const SLOW_START_DOUBLING_MS = 500;
/** Refused calls come back over this share of the time their turns take at the full rate. */
const RETURN_PRESSURE = 0.75;

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
  { go: true; waitMs: number; paced: boolean; inFlight: boolean } | { go: false; retryMs: number; why: 'quota' | 'paused' | 'slow_start' };

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
}

export class Admission {
  private readonly redis: Scripted;
  private readonly project: string;
  /** Models with no limit known, and when that was last confirmed. */
  private readonly free = new Map<string, number>();
  /** Slow start while no limit is known: calls in flight here per model, and the window. */
  private readonly inFlight = new Map<string, number>();
  private readonly window = new Map<string, number>();
  /** Successes per model per second here, flushed once a second: the observed rate at a first 429. */
  private readonly counts = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
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
    const seen = this.free.get(req.model);
    if (seen === undefined || Date.now() - seen >= FREE_CACHE_MS) {
      // flag: for an admitted call, whether it was contended; for a refused one, whether the model is paused.
      const [code, ms, waiting, interval, flag] = await this.redis.ferryAdmit(
        this.key(req.model),
        this.key(req.model, ':waiting'),
        this.key(req.model, ':tenants'),
        this.key(req.model, `:waiting:${req.tenant}`),
        Date.now(),
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
        if (code === 1) return { go: true, waitMs: Number(ms), paced: flag === 1, inFlight: false };
        // Its tenant's waiting calls come back over a little less than the turns they need at the
        // full rate: a few find their turn taken and go round again, but no turn is left idle for
        // want of a caller (with other tenants waiting, fairness at admission shares the turns).
        const spread = Math.min(Number(waiting) * (Number(interval) || 1000) * RETURN_PRESSURE, 60_000);
        return { go: false, retryMs: Math.round(Number(ms) + Math.random() * spread), why: flag === 1 ? 'paused' : 'quota' };
      }
      this.free.set(req.model, Date.now());
    }
    return this.slowStart(req.model);
  }

  /** No limit known: a window of calls in flight here, widened by each success. */
  private slowStart(model: string): Decision {
    const n = this.inFlight.get(model) ?? 0;
    const doublings = Math.min(20, Math.floor((Date.now() - (this.firstSeen.get(model) ?? Date.now())) / SLOW_START_DOUBLING_MS));
    const window = Math.max(this.window.get(model) ?? SLOW_START_WINDOW, SLOW_START_WINDOW * 2 ** doublings);
    if (n >= window) return { go: false, retryMs: 50 + Math.round(Math.random() * 200), why: 'slow_start' };
    this.inFlight.set(model, n + 1);
    return { go: true, waitMs: 0, paced: false, inFlight: true };
  }

  /** The call admitted by `decision` ended, whatever its outcome. */
  finished(req: AdmissionRequest, decision: Decision): void {
    if (decision.go && decision.inFlight) this.inFlight.set(req.model, Math.max(0, (this.inFlight.get(req.model) ?? 1) - 1));
  }

  /** After a call that Gemini answered: widen the slow start, learn up, correct the token estimate. */
  async succeeded(req: AdmissionRequest, decision: Decision, promptTokens: number | undefined): Promise<void> {
    this.counts.set(req.model, (this.counts.get(req.model) ?? 0) + 1);
    if (!decision.go) return;
    if (decision.inFlight) this.window.set(req.model, (this.window.get(req.model) ?? SLOW_START_WINDOW) + 1);
    const extra = promptTokens === undefined ? 0 : promptTokens - req.tokens;
    const correct = extra !== 0 && !decision.inFlight;
    const grow = this.opts.rpm <= 0 && decision.paced;
    if (!correct && !grow) return;
    await this.redis.ferryAdmitSucceeded(this.key(req.model), Date.now(), this.cfgRate, extra, this.opts.tpm, decision.paced ? '1' : '0');
  }

  /** After Gemini refused a call for quota: pause the model for its delay, and learn its limit. */
  async refused(model: string, refusal: QuotaRefusal): Promise<void> {
    this.free.delete(model);
    const observed = refusal.limits.rpm ? 0 : await this.observedRate(model);
    await this.redis.ferryAdmitRefused(
      this.key(model),
      Date.now(),
      Math.max(refusal.retryAfterMs ?? 1000, MIN_PAUSE_MS),
      this.cfgRate,
      observed,
      refusal.limits.rpm ?? 0,
      refusal.limits.tpm ?? 0,
      this.opts.tpm,
      STATED_MARGIN,
    );
  }

  /**
   * Successes per second across every worker over the last three seconds and this one so far, or
   * over the time since this process first saw the model if shorter; 0 when fewer than
   * MIN_OBSERVED calls are known (too few to tell a rate from a burst).
   */
  private async observedRate(model: string): Promise<number> {
    await this.flushCounts();
    const t = Date.now();
    const sec = Math.floor(t / 1000);
    const counts = await this.redis.mget([0, 1, 2, 3].map((k) => this.key(model, `:ok:${sec - k}`)));
    const calls = counts.reduce((sum, c) => sum + Number(c ?? 0), 0);
    const seconds = Math.min(3 + (t % 1000) / 1000, (t - (this.firstSeen.get(model) ?? t)) / 1000);
    return calls < MIN_OBSERVED || seconds <= 0 ? 0 : calls / Math.max(seconds, 0.25);
  }

  private async flushCounts(): Promise<void> {
    if (this.counts.size === 0) return;
    const sec = nowSeconds();
    // One transaction per model: each model's keys share a slot, different models' need not.
    const counts = [...this.counts];
    this.counts.clear();
    await Promise.all(
      counts.map(([model, n]) =>
        this.redis
          .multi()
          .incrby(this.key(model, `:ok:${sec}`), n)
          .expire(this.key(model, `:ok:${sec}`), 10)
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
