/**
 * localStorage, used carefully: it may be full, disabled or hold something unexpected. The SDK's
 * outbox lives here (OutboxStorage), so that what was written offline survives a reload.
 */
import type { OutboxStorage, PendingPublish } from "../../shared/client/index.js";

export function loadJson<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

export function saveJson(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Full or disabled: the chat goes on, only this survives no reload.
  }
}

/**
 * One outbox per user in this browser. Tabs of one user share it: each saves its own list, so a
 * tab's save keeps the entries of the others that it does not know about (they are resent by ids,
 * which the server deduplicates per user).
 */
export function localOutbox(user: string): OutboxStorage {
  const key = `herald:${user}:outbox`;
  let known = new Set<string>();
  return {
    load(): PendingPublish[] {
      const list = loadJson<PendingPublish[]>(key, []);
      const valid = Array.isArray(list) ? list.filter((p) => typeof p?.id === "string") : [];
      known = new Set(valid.map((p) => p.id));
      return valid;
    },
    save(list: PendingPublish[]): void {
      // Entries another tab added since our load stay; ours that were answered go.
      const others = loadJson<PendingPublish[]>(key, []).filter(
        (p) => typeof p?.id === "string" && !known.has(p.id) && !list.some((q) => q.id === p.id),
      );
      known = new Set(list.map((p) => p.id));
      saveJson(key, [...others, ...list]);
    },
  };
}
