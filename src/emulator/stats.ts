/** Counters the emulator exposes through stats() and GET /_emulator/stats. */

import { ROUTES, type EmulatorStats, type GenerateRequestRecord, type RouteName } from './types.js';

const KEPT_GENERATE_REQUESTS = 100;

const zeroPerRoute = (): Record<string, number> => Object.fromEntries(ROUTES.map((r) => [r, 0]));

export class StatsCollector {
  private bytesBySession: Record<string, number> = {};
  private bytesByFile: Record<string, number> = {};
  private fileBySession = new Map<string, string>();
  private requests = zeroPerRoute();
  private faultsInjected = zeroPerRoute();
  private generateRequests: GenerateRequestRecord[] = [];

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

  snapshot(): EmulatorStats {
    return structuredClone({
      bytesBySession: this.bytesBySession,
      bytesByFile: this.bytesByFile,
      requests: this.requests,
      faultsInjected: this.faultsInjected,
      generateRequests: this.generateRequests,
    });
  }

  reset(): void {
    this.bytesBySession = {};
    this.bytesByFile = {};
    this.fileBySession.clear();
    this.requests = zeroPerRoute();
    this.faultsInjected = zeroPerRoute();
    this.generateRequests = [];
  }
}
