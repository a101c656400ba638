/** A local Gemini Developer API emulator: resumable uploads, files, generateContent, embeddings and Batch Mode on the real wire protocol. */

export { emulatorOptionsFromEnv } from './env.js';
export { startEmulator } from './server.js';
export type {
  BatchCounters,
  BatchEndState,
  BatchSetting,
  Emulator,
  EmulatorOptions,
  EmulatorStats,
  FaultKind,
  FaultRule,
  FileUriTls,
  GenerateModelStats,
  GenerateRequestRecord,
  LatencySetting,
  QuotaLimits,
  QuotaSetting,
  QuotaStep,
  QuotaTimeline,
  RouteName,
} from './types.js';
