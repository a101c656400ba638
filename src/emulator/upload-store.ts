/** Upload sessions: what the emulator holds of each resumable upload between its requests. */

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredFile } from './file-store.js';

type SessionStatus = 'active' | 'final' | 'cancelled';

export interface UploadSession {
  id: string;
  /** File id the caller asked for (file.name in the start body), if any. */
  requestedId?: string;
  displayName?: string;
  mimeType: string;
  declaredSize?: number;
  /** Bytes accepted so far; the only valid offset for the next chunk. */
  persisted: number;
  /** sha256 over the persisted bytes. */
  hash: Hash;
  status: SessionStatus;
  /** A chunk is being received. */
  busy: boolean;
  storePath?: string;
  file?: StoredFile;
  /**
   * The accepted bytes, kept in memory while the upload is small enough (maxKeptFileBytes) and
   * there is no store directory, so that a batch can read its input file; undefined otherwise.
   */
  kept?: Buffer[];
}

export class EmulatedUploads {
  private sessions = new Map<string, UploadSession>();

  create(
    init: Pick<UploadSession, 'requestedId' | 'displayName' | 'mimeType' | 'declaredSize' | 'kept'>,
    storeDir?: string,
  ): UploadSession {
    const id = randomBytes(24).toString('base64url');
    const session: UploadSession = {
      ...init,
      id,
      persisted: 0,
      hash: createHash('sha256'),
      status: 'active',
      busy: false,
      storePath: storeDir ? join(storeDir, `${id}.part`) : undefined,
    };
    this.sessions.set(id, session);
    return session;
  }

  get(id: string | null): UploadSession | undefined {
    return id ? this.sessions.get(id) : undefined;
  }

  statuses(): Record<string, SessionStatus> {
    return Object.fromEntries([...this.sessions].map(([id, s]) => [id, s.status]));
  }

  clear(): void {
    for (const session of this.sessions.values()) {
      if (session.status === 'active') discardPart(session);
    }
    this.sessions.clear();
  }
}

export function discardPart(session: UploadSession): void {
  if (session.storePath) rm(session.storePath, { force: true }).catch(() => {});
}
