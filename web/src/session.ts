/**
 * Who this tab is: the user (or token) and the clientId.
 *
 * PROTOCOL: Transport. The clientId is kept per browser tab in sessionStorage, so a reload resumes
 * the same durable subscriptions. A duplicated tab copies sessionStorage, and two live connections
 * with one (user, clientId) replace each other; so at start the tab asks the other tabs of this
 * origin over a BroadcastChannel whether one of them holds that clientId, and takes a fresh one if
 * so. After a `REPLACED` error the app also takes a fresh one (see chat.ts).
 */
import { randomId as uuid } from "../../shared/client/index.js";
import { NAME_RE } from "../../shared/topics.js";

const CLIENT_ID = "herald:clientId";
const USER = "herald:user";
const TOKEN = "herald:token";

export interface Identity {
  /** The user id in `dev` auth; with a token, the `sub` read from it (for display only). */
  user: string;
  token?: string;
}

function randomId(): string {
  return `w${uuid().replaceAll("-", "")}`.slice(0, 32);
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** Reads `sub` from a JWT without checking it (the server checks it). */
export function tokenSubject(token: string): string | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  return safe(() => {
    const json = JSON.parse(atob(part.replaceAll("-", "+").replaceAll("_", "/"))) as { sub?: unknown };
    return typeof json.sub === "string" ? json.sub : undefined;
  }, undefined);
}

/**
 * `?user=NAME` (dev auth) or `?token=JWT` (jwt auth) in the URL sign in and are then removed from
 * the address bar, so a shared link does not carry them; they are kept for this tab and as the
 * default for new tabs.
 */
export function readIdentity(): Identity | undefined {
  const params = new URLSearchParams(location.search);
  const urlUser = params.get("user");
  const urlToken = params.get("token");
  if (urlToken || urlUser) {
    if (urlToken) saveIdentity({ user: tokenSubject(urlToken) ?? "", token: urlToken });
    else if (urlUser && NAME_RE.test(urlUser)) saveIdentity({ user: urlUser });
    params.delete("user");
    params.delete("token");
    const rest = params.toString();
    history.replaceState(history.state, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
  }
  const token = safe(() => sessionStorage.getItem(TOKEN) ?? localStorage.getItem(TOKEN), null);
  if (token) return { user: tokenSubject(token) ?? "", token };
  const user = safe(() => sessionStorage.getItem(USER) ?? localStorage.getItem(USER), null);
  return user && NAME_RE.test(user) ? { user } : undefined;
}

export function saveIdentity(identity: Identity): void {
  safe(() => {
    for (const store of [sessionStorage, localStorage]) {
      if (identity.token) {
        store.setItem(TOKEN, identity.token);
        store.removeItem(USER);
      } else {
        store.setItem(USER, identity.user);
        store.removeItem(TOKEN);
      }
    }
  }, undefined);
}

export function signOut(): void {
  safe(() => {
    for (const store of [sessionStorage, localStorage]) {
      store.removeItem(TOKEN);
      store.removeItem(USER);
    }
  }, undefined);
}

let channel: BroadcastChannel | undefined;
let current: string | undefined;

/** Answers other tabs that ask whether this one holds a clientId. */
function listen(): void {
  if (channel || typeof BroadcastChannel === "undefined") return;
  channel = new BroadcastChannel("herald-client-ids");
  channel.onmessage = (e: MessageEvent<{ ask?: string; mine?: string }>) => {
    if (e.data.ask && e.data.ask === current) channel?.postMessage({ mine: current });
  };
}

/** This tab's clientId: the one in sessionStorage unless another live tab holds it. */
export async function claimClientId(): Promise<string> {
  listen();
  let id = safe(() => sessionStorage.getItem(CLIENT_ID), null);
  if (id && channel) {
    const asked = id;
    const taken = await new Promise<boolean>((resolve) => {
      const probe = new BroadcastChannel("herald-client-ids");
      const timer = setTimeout(() => {
        probe.close();
        resolve(false);
      }, 150);
      probe.onmessage = (e: MessageEvent<{ mine?: string }>) => {
        if (e.data.mine === asked) {
          clearTimeout(timer);
          probe.close();
          resolve(true);
        }
      };
      probe.postMessage({ ask: asked });
    });
    if (taken) id = null;
  }
  if (!id) id = freshClientId();
  current = id;
  return id;
}

/** A new clientId for this tab (after `REPLACED`, or for a duplicated tab). */
export function freshClientId(): string {
  const id = randomId();
  safe(() => sessionStorage.setItem(CLIENT_ID, id), undefined);
  current = id;
  return id;
}
