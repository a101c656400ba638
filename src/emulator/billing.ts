/**
 * What the emulator billed, as Gemini's bill would show it: tokens per model, tier and mode (a live
 * call or a Batch Mode line), counted when an answer carrying usage has gone out whole. A call whose
 * client went away before its answer was written is not billed, so a ledger that records every
 * answer it reads can be compared with this one token for token.
 */

export interface BilledUsage {
  promptTokenCount: number;
  candidatesTokenCount: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  toolUsePromptTokenCount?: number;
}

export interface BillingLine {
  model: string;
  tier: string;
  batch: boolean;
  requests: number;
  /** Prompt tokens, cached ones included (as promptTokenCount reports them), and tool-use prompts. */
  inputTokens: number;
  cachedTokens: number;
  /** Candidates and thoughts: what Gemini bills at the output rate. */
  outputTokens: number;
  thoughtsTokens: number;
}

export class Billing {
  /** A Map: model names come from request paths and must not reach an object's prototype. */
  private lines = new Map<string, BillingLine>();

  bill(model: string, usage: BilledUsage, opts: { tier?: string; batch?: boolean } = {}): void {
    const tier = opts.tier ?? 'standard';
    const batch = opts.batch ?? false;
    const key = JSON.stringify([model, tier, batch]);
    let line = this.lines.get(key);
    if (!line) {
      line = { model, tier, batch, requests: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, thoughtsTokens: 0 };
      this.lines.set(key, line);
    }
    line.requests += 1;
    line.inputTokens += usage.promptTokenCount + (usage.toolUsePromptTokenCount ?? 0);
    line.cachedTokens += usage.cachedContentTokenCount ?? 0;
    line.outputTokens += usage.candidatesTokenCount + (usage.thoughtsTokenCount ?? 0);
    line.thoughtsTokens += usage.thoughtsTokenCount ?? 0;
  }

  /** Bills `usage` once `res` has written its whole answer (not if the client left first). */
  billWhenSent(
    res: { once(event: 'finish', fn: () => void): unknown },
    model: string,
    usage: BilledUsage | undefined,
    tier?: string,
  ): void {
    if (usage) res.once('finish', () => this.bill(model, usage, { tier }));
  }

  snapshot(): { lines: BillingLine[]; totals: Omit<BillingLine, 'model' | 'tier' | 'batch'> } {
    const lines = [...this.lines.values()].map((l) => ({ ...l }));
    const totals = { requests: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, thoughtsTokens: 0 };
    for (const l of lines) {
      totals.requests += l.requests;
      totals.inputTokens += l.inputTokens;
      totals.cachedTokens += l.cachedTokens;
      totals.outputTokens += l.outputTokens;
      totals.thoughtsTokens += l.thoughtsTokens;
    }
    return { lines, totals };
  }

  reset(): void {
    this.lines.clear();
  }
}
