/** A local Gemini Developer API emulator: resumable uploads, files and generateContent on the real wire protocol. */

export { startEmulator } from './server.js';
export type {
  Emulator,
  EmulatorOptions,
  EmulatorStats,
  FaultKind,
  FaultRule,
  GenerateRequestRecord,
  RouteName,
} from './types.js';
