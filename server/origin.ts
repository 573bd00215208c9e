/**
 * Which browser pages may talk to the hub (PROTOCOL.md "Transport": the handshake's `Origin`
 * check). A page of another site must not open a socket as the browser's user: in dev auth it
 * could claim any user and be admin. Browsers send `Origin`; Node clients send none and are not
 * affected.
 *
 * The hub's own origin is the one whose host is the `Host` the request came to. In dev auth that is
 * not enough: a site whose DNS name an attacker points at 127.0.0.1 (DNS rebinding) makes both
 * `Origin` and `Host` its own name, and then its pages reach the hub as the same origin, sockets and
 * HTTP API alike. So in dev auth a `Host` counts only when it is a loopback name, an IP address, the
 * configured HOST, or the host of an origin in HERALD_ALLOWED_ORIGINS. In jwt auth a page of
 * another site has no token to send, so a name is trusted there as the proxy in front gives it.
 */
import net from "node:net";
import { type Config, isLoopback, originOf } from "./config.js";

export class OriginPolicy {
  private readonly allowedHosts: Set<string>;

  constructor(private readonly config: Readonly<Config>) {
    this.allowedHosts = new Set(config.allowedOrigins.map((origin) => new URL(origin).host));
  }

  /** A request to `host` (its `Host` header) may be from a page of this hub. */
  trustsHost(host: string | undefined): boolean {
    if (this.config.auth === "jwt" || host === undefined) return true;
    if (this.allowedHosts.has(host)) return true;
    const name = hostname(host);
    return isLoopback(name) || net.isIP(name) !== 0 || name === this.config.host;
  }

  /** A handshake with these headers may open a socket. */
  allows(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    const normal = originOf(origin);
    if (normal === undefined) return false;
    if (this.config.allowedOrigins.includes(normal)) return true;
    return new URL(normal).host === host && this.trustsHost(host);
  }
}

/** The name of a `Host` header: without its port, an IPv6 address without its brackets. */
function hostname(host: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1]!;
  return host.replace(/:\d+$/, "");
}
