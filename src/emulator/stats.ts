/** Counters the emulator exposes through stats() and GET /_emulator/stats. */

import {
  ROUTES,
  type BatchCounters,
  type EmulatorStats,
  type GenerateModelStats,
  type GenerateRequestRecord,
  type QuotaTimeline,
  type RouteName,
} from './types.js';

const KEPT_GENERATE_REQUESTS = 100;

const zeroPerRoute = (): Record<string, number> => Object.fromEntries(ROUTES.map((r) => [r, 0]));
const zeroBatches = (): BatchCounters => ({ created: 0, linesAnswered: 0, linesFailed: 0 });

export class StatsCollector {
  private bytesBySession: Record<string, number> = {};
  private bytesByFile: Record<string, number> = {};
  private fileBySession = new Map<string, string>();
  private requests = zeroPerRoute();
  private faultsInjected = zeroPerRoute();
  private generateRequests: GenerateRequestRecord[] = [];
  /** A Map: model names come from request paths and must not reach an object's prototype. */
  private generateByModel = new Map<string, GenerateModelStats>();
  private batches = zeroBatches();

  countRequest(route: RouteName): void {
    this.requests[route] += 1;
  }

  countFault(route: RouteName): void {
    this.faultsInjected[route] += 1;
  }

  /** Called for every piece of an upload body as it streams in (hot path: keep it cheap). */
  addUploadBytes(sessionId: string, n: number): void {
    this.bytesBySession[sessionId] = (this.bytesBySession[sessionId] ?? 0) + n;
    const file = this.fileBySession.get(sessionId);
    if (file !== undefined) this.bytesByFile[file] += n;
  }

  /** From now on the session's bytes are also reported under the file's name. */
  linkSessionToFile(sessionId: string, fileName: string): void {
    this.fileBySession.set(sessionId, fileName);
    this.bytesByFile[fileName] = this.bytesBySession[sessionId] ?? 0;
  }

  recordGenerateRequest(record: GenerateRequestRecord): void {
    this.generateRequests.push(record);
    if (this.generateRequests.length > KEPT_GENERATE_REQUESTS) this.generateRequests.shift();
  }

  /** A model call (generate or embed) of `model` was received (counted from routing until its response closes). */
  generateStarted(model: string): void {
    const s = this.modelStats(model);
    s.inFlight += 1;
    if (s.inFlight > s.peakInFlight) s.peakInFlight = s.inFlight;
  }

  generateEnded(model: string, answered2xx: boolean): void {
    const s = this.modelStats(model);
    s.inFlight -= 1;
    if (answered2xx) s.answered2xx += 1;
  }

  countQuotaRefusal(model: string): void {
    this.modelStats(model).refusedForQuota += 1;
  }

  countBatchCreated(): void {
    this.batches.created += 1;
  }

  countBatchLine(failed: boolean): void {
    this.batches.linesAnswered += 1;
    if (failed) this.batches.linesFailed += 1;
  }

  private modelStats(model: string): GenerateModelStats {
    let s = this.generateByModel.get(model);
    if (!s) {
      s = { answered2xx: 0, refusedForQuota: 0, inFlight: 0, peakInFlight: 0 };
      this.generateByModel.set(model, s);
    }
    return s;
  }

  /** `quota` is the quota enforcer's, which keeps the schedule: these counters only count. */
  snapshot(quota: QuotaTimeline): Omit<EmulatorStats, 'sessionStatus'> {
    return structuredClone({
      bytesBySession: this.bytesBySession,
      bytesByFile: this.bytesByFile,
      requests: this.requests,
      faultsInjected: this.faultsInjected,
      generateRequests: this.generateRequests,
      generateByModel: Object.fromEntries(this.generateByModel),
      batches: this.batches,
      quota,
    });
  }

  reset(): void {
    this.bytesBySession = {};
    this.bytesByFile = {};
    this.fileBySession.clear();
    this.requests = zeroPerRoute();
    this.faultsInjected = zeroPerRoute();
    this.generateRequests = [];
    this.batches = zeroBatches();
    // Calls still in flight end after the reset: they stay counted, so inFlight never goes negative.
    const inFlight = [...this.generateByModel].filter(([, s]) => s.inFlight > 0);
    this.generateByModel = new Map(
      inFlight.map(([model, s]) => [model, { answered2xx: 0, refusedForQuota: 0, inFlight: s.inFlight, peakInFlight: s.inFlight }]),
    );
  }
}
