/** The emulator's context caches (cachedContents) and what their storage has cost, by the token-hour. */

export interface CachedContent {
  name: string;
  model: string;
  displayName?: string;
  contents: unknown[];
  systemInstruction?: unknown;
  tools?: unknown;
  toolConfig?: unknown;
  tokens: number;
  createdAt: number;
  expiresAt: number;
}

/** The emulator's caches, and what their storage has cost so far (token-hours per model). */
export class CacheStore {
  private caches = new Map<string, CachedContent>();
  readonly storageTokenHours = new Map<string, number>();

  add(c: CachedContent): void {
    this.caches.set(c.name, c);
  }

  /** The live cache, or undefined (an expired one is gone, its storage billed). */
  get(name: string): CachedContent | undefined {
    const c = this.caches.get(name);
    if (c && Date.now() >= c.expiresAt) this.end(c, c.expiresAt);
    return c && Date.now() < c.expiresAt ? c : undefined;
  }

  list(): CachedContent[] {
    return [...this.caches.values()].filter((c) => this.get(c.name));
  }

  delete(name: string): boolean {
    const c = this.get(name);
    if (c) this.end(c, Date.now());
    return c !== undefined;
  }

  private end(c: CachedContent, at: number): void {
    this.caches.delete(c.name);
    const hours = Math.max(0, at - c.createdAt) / 3600_000;
    this.storageTokenHours.set(c.model, (this.storageTokenHours.get(c.model) ?? 0) + c.tokens * hours);
  }

  clear(): void {
    this.caches.clear();
    this.storageTokenHours.clear();
  }
}
