/** The file store: files as the emulator holds them, their state and their resource as the API shows it. */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { invalidArgument, RpcError } from './errors.js';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 12;
/** Names a caller may choose: up to 40 lowercase alphanumerics or dashes, no dash at either end. */
const CUSTOM_ID = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
/** Display names starting with this end in state FAILED: a deterministic hook for tests. */
const FAIL_PREFIX = 'fail-processing';

export type FileState = 'PROCESSING' | 'ACTIVE' | 'FAILED';
/**
 * UPLOADED: sent by a client; GENERATED: written by the API (batch responses), the only kind it lets
 * clients download; REGISTERED: a Cloud Storage object registered with files:register.
 */
export type FileSource = 'UPLOADED' | 'GENERATED' | 'REGISTERED';

export interface StoredFile {
  id: string;
  displayName?: string;
  mimeType: string;
  sizeBytes: number;
  sha256Hex: string;
  createdAt: number;
  /** When processing ends (ACTIVE or FAILED). */
  readyAt: number;
  expiresAt: number;
  seq: number;
  storePath?: string;
  source: FileSource;
  /** The bytes, when held in memory (generated files, small uploads); else they are at storePath, if anywhere. */
  content?: Buffer[];
  /** A PDF's pages (its `/Type /Page` objects), when its bytes were held: Gemini counts 258 tokens a page. */
  pages?: number;
}

export interface NewFile {
  id?: string;
  displayName?: string;
  mimeType: string;
  sizeBytes: number;
  sha256Hex: string;
  storePath?: string;
  source?: FileSource;
  content?: Buffer[];
}

export interface FileResource {
  name: string;
  displayName?: string;
  mimeType: string;
  sizeBytes: string;
  createTime: string;
  updateTime: string;
  expirationTime: string;
  sha256Hash: string;
  uri: string;
  downloadUri?: string;
  state: FileState;
  source: FileSource;
  error?: { code: number; message: string };
}

/** Accepts "files/abc", "abc" or a full file URI and gives "abc". */
export function fileIdOf(nameOrUri: string): string {
  const match = /(?:^|\/)files\/([^/?#]+)$/.exec(nameOrUri);
  return match ? match[1] : nameOrUri;
}

export function stateOf(file: StoredFile, now = Date.now()): FileState {
  if (now < file.readyAt) return 'PROCESSING';
  return file.displayName?.startsWith(FAIL_PREFIX) ? 'FAILED' : 'ACTIVE';
}

const rfc3339 = (ms: number) => new Date(ms).toISOString();

export class EmulatedFiles {
  private files = new Map<string, StoredFile>();
  private seq = 0;

  constructor(private readonly timing: { processingDelayMs: number; fileTtlMs: number }) {}

  /** Checks a caller-chosen id; throws the 400/409 the API would answer. */
  checkCustomId(id: string): void {
    if (!CUSTOM_ID.test(id)) {
      throw invalidArgument(
        `Invalid file name "files/${id}": up to 40 lowercase letters, digits or dashes, not starting or ending with a dash.`,
      );
    }
    if (this.get(id)) throw new RpcError(409, `File files/${id} already exists.`);
  }

  add(init: NewFile): StoredFile {
    const now = Date.now();
    const id = init.id ?? this.newId();
    const file: StoredFile = {
      id,
      displayName: init.displayName,
      mimeType: init.mimeType,
      sizeBytes: init.sizeBytes,
      sha256Hex: init.sha256Hex,
      createdAt: now,
      // Files the API writes itself need no processing.
      readyAt: init.source === 'GENERATED' ? now : now + this.timing.processingDelayMs,
      expiresAt: now + this.timing.fileTtlMs,
      seq: ++this.seq,
      storePath: init.storePath,
      source: init.source ?? 'UPLOADED',
      content: init.content,
      pages: init.mimeType === 'application/pdf' && init.content ? pdfPages(init.content) : undefined,
    };
    this.files.set(id, file);
    return file;
  }

  /** The live file, or undefined when unknown, deleted or expired. */
  get(nameOrId: string): StoredFile | undefined {
    const id = fileIdOf(nameOrId);
    const file = this.files.get(id);
    if (file && Date.now() >= file.expiresAt) {
      this.remove(file);
      return undefined;
    }
    return file;
  }

  delete(nameOrId: string): boolean {
    const file = this.get(nameOrId);
    if (file) this.remove(file);
    return file !== undefined;
  }

  /** Makes a file vanish as if its time to live had passed. */
  expire(nameOrId: string): boolean {
    return this.delete(nameOrId);
  }

  /** Newest first, starting after the file with sequence number `beforeSeq` (exclusive). */
  page(pageSize: number, beforeSeq = Infinity): { files: StoredFile[]; more: boolean } {
    const live = [...this.files.values()].filter((f) => f.seq < beforeSeq && this.get(f.id));
    live.sort((a, b) => b.seq - a.seq);
    return { files: live.slice(0, pageSize), more: live.length > pageSize };
  }

  clear(): void {
    for (const file of [...this.files.values()]) this.remove(file);
    this.seq = 0;
  }

  /** A stream of the file's bytes, or undefined when the emulator did not keep them. */
  contentOf(file: StoredFile): Readable | undefined {
    if (file.content) return Readable.from(file.content, { objectMode: false });
    return file.storePath ? createReadStream(file.storePath) : undefined;
  }

  toResource(file: StoredFile, baseUrl: string, now = Date.now()): FileResource {
    const state = stateOf(file, now);
    const resource: FileResource = {
      name: `files/${file.id}`,
      ...(file.displayName !== undefined ? { displayName: file.displayName } : {}),
      mimeType: file.mimeType,
      sizeBytes: String(file.sizeBytes),
      createTime: rfc3339(file.createdAt),
      updateTime: rfc3339(state === 'PROCESSING' ? file.createdAt : file.readyAt),
      expirationTime: rfc3339(file.expiresAt),
      // The real API answers base64 of the *hex* digest text (88 characters), not base64 of the
      // 32 raw digest bytes (44 characters), although the SDK only documents "SHA-256 hash of the
      // uploaded bytes, encoded in base64": see the live response quoted in googleapis/js-genai
      // issue #381, whose sha256Hash "MTgzNjUw…ZQ==" decodes to the hex string "183650e2…5a8e".
      sha256Hash: Buffer.from(file.sha256Hex, 'utf8').toString('base64'),
      uri: `${baseUrl}/v1beta/files/${file.id}`,
      ...(file.source === 'GENERATED' ? { downloadUri: `${baseUrl}/download/v1beta/files/${file.id}:download?alt=media` } : {}),
      state,
      source: file.source,
    };
    if (state === 'FAILED') {
      resource.error = { code: 3, message: 'The file could not be processed (display name starts with "fail-processing").' };
    }
    return resource;
  }

  private remove(file: StoredFile): void {
    this.files.delete(file.id);
    if (file.storePath) rm(file.storePath, { force: true }).catch(() => {});
  }

  private newId(): string {
    for (;;) {
      const bytes = randomBytes(ID_LENGTH);
      const id = Array.from(bytes, (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
      if (!this.files.has(id)) return id;
    }
  }
}

/** The page objects of a PDF held in memory (none found: undefined, counted as one page). */
function pdfPages(content: Buffer[]): number | undefined {
  let pages = 0;
  for (const chunk of content) pages += chunk.toString('latin1').match(/\/Type\s*\/Page(?![a-zA-Z])/g)?.length ?? 0;
  return pages || undefined;
}
