/**
 * The Flex tier's best effort: a share of Flex calls is shed (refused for capacity, at once, and
 * not billed) and those served wait longer. Gemini's refusal shape for a shed call is not pinned
 * down in its docs, so both shapes clients meet are offered: 503 UNAVAILABLE, or 429
 * RESOURCE_EXHAUSTED with no QuotaFailure (it names no quota of the project).
 */
import { RpcError } from './errors.js';
import { seededRandom } from './random.js';

export interface TierSetting {
  flex?: {
    /** 0..1 of Flex calls refused. */
    shedProbability?: number;
    /** How a shed call is answered: 503 (default) or 429. */
    shedStatus?: 503 | 429;
    /** Added to a served Flex call's service time. */
    extraLatencyMs?: number;
  };
}

const SEED_SALT = 0x5f1e7;

export class TierModel {
  private setting: Required<NonNullable<TierSetting['flex']>> = { shedProbability: 0, shedStatus: 503, extraLatencyMs: 0 };
  private random: () => number;

  constructor(setting: TierSetting | undefined, seed: number) {
    this.random = seededRandom(seed ^ SEED_SALT);
    if (setting) this.set(setting);
  }

  set(setting: TierSetting): void {
    const f = setting.flex ?? {};
    const p = f.shedProbability ?? 0;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RpcError(400, 'flex.shedProbability must be a number from 0 to 1.');
    if (f.shedStatus !== undefined && f.shedStatus !== 503 && f.shedStatus !== 429)
      throw new RpcError(400, 'flex.shedStatus must be 503 or 429.');
    const extra = f.extraLatencyMs ?? 0;
    if (typeof extra !== 'number' || !(extra >= 0 && extra <= 600_000)) throw new RpcError(400, 'flex.extraLatencyMs must be 0 to 600000.');
    this.setting = { shedProbability: p, shedStatus: f.shedStatus ?? 503, extraLatencyMs: extra };
  }

  get(): TierSetting {
    return { flex: { ...this.setting } };
  }

  /** Throws the shed answer for a call at `tier` when it is shed; else answers the extra wait. */
  admit(tier: string): number {
    if (tier !== 'flex') return 0;
    if (this.setting.shedProbability > 0 && this.random() < this.setting.shedProbability) {
      if (this.setting.shedStatus === 429) {
        throw new RpcError(429, 'Flex capacity is temporarily exhausted. Please retry later.', { status: 'RESOURCE_EXHAUSTED' });
      }
      throw new RpcError(503, 'The model is overloaded for the flex tier. Please try again later.', { status: 'UNAVAILABLE' });
    }
    return this.setting.extraLatencyMs;
  }
}
