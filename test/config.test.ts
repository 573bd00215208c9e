/**
 * server/config.ts against the settings tables of docs/protocol.md and the README (kept in step with
 * PROTOCOL.md "Running"): the defaults, one error listing every bad variable, frozen.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../server/config.js";
import { ROOT } from "./helpers.js";

describe("config", () => {
  it("defaults to PROTOCOL.md's table", () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.dataDir, path.resolve("./data"));
    assert.equal(config.auth, "dev");
    assert.equal(config.jwtSecret, undefined);
    assert.equal(config.durability, "full");
    assert.equal(config.maxPayload, 65536);
    assert.equal(config.maxInflight, 1024);
    assert.equal(config.rateLimit, 1000);
    assert.equal(config.ackTimeoutMs, 30000);
    assert.equal(config.maxDeliveries, 5);
    assert.equal(config.maxBacklog, 1000000);
    assert.equal(config.retentionMessages, 10000000);
    assert.equal(config.retentionMs, 30 * 24 * 60 * 60 * 1000);
    assert.equal(config.txnCheckMs, 10000);
    assert.equal(config.txnMaxChecks, 10);
    assert.equal(config.store, "sqlite");
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.redisUrl, undefined);
    assert.match(config.nodeId, /:3000$/);
  });

  it("has every setting with its default in the tables of docs/protocol.md and the README", () => {
    const config = loadConfig({});
    const code = (value: string | number) => `\`${value}\``;
    assert.equal(config.dataDir, path.resolve("./data"));
    assert.equal(config.webDir, path.join(ROOT, "web", "dist"));
    assert.deepEqual(
      [config.devPublic, config.allowedOrigins, config.admins, config.metricsToken],
      [false, [], undefined, undefined],
    );
    const shown: Record<string, string> = {
      PORT: code(config.port),
      HOST: code(config.host),
      HERALD_DATA_DIR: code("./data"),
      HERALD_AUTH: code(config.auth),
      HERALD_JWT_SECRET: "none",
      HERALD_ADMINS: "none",
      HERALD_DEV_PUBLIC: code(0),
      HERALD_ALLOWED_ORIGINS: "none",
      HERALD_METRICS_TOKEN: "none",
      HERALD_DURABILITY: code(config.durability),
      HERALD_MAX_PAYLOAD: code(config.maxPayload),
      HERALD_MAX_INFLIGHT: code(config.maxInflight),
      HERALD_MAX_BUFFERED: code(config.maxBuffered),
      HERALD_MAX_SUBSCRIPTIONS: code(config.maxSubscriptions),
      HERALD_MAX_CONNECTIONS: code(config.maxConnections),
      HERALD_RATE_LIMIT: code(config.rateLimit),
      HERALD_RETENTION_MESSAGES: code(config.retentionMessages),
      HERALD_RETENTION_MS: code(config.retentionMs),
      HERALD_ACK_TIMEOUT_MS: code(config.ackTimeoutMs),
      HERALD_MAX_DELIVERIES: code(config.maxDeliveries),
      HERALD_MAX_BACKLOG: code(config.maxBacklog),
      HERALD_TXN_CHECK_MS: code(config.txnCheckMs),
      HERALD_TXN_MAX_CHECKS: code(config.txnMaxChecks),
      HERALD_STORE: code(config.store),
      HERALD_DATABASE_URL: "none",
      HERALD_DATABASE_POOL: code(config.databasePool),
      HERALD_REDIS_URL: "none",
      HERALD_REDIS_PREFIX: code(config.redisPrefix),
      HERALD_NODE_ID: "host name and port",
      HERALD_LOG_LEVEL: code(config.logLevel),
      HERALD_WEB_DIR: code("web/dist"),
    };
    // Every variable config.ts reads is in the list, but for the CLI's client defaults, which are
    // no server settings.
    const read = new Set(
      fs.readFileSync(path.join(ROOT, "server", "config.ts"), "utf8").match(/"(HERALD_[A-Z_]+|PORT|HOST)"/g),
    );
    const others = ["HERALD_URL", "HERALD_USER", "HERALD_TOKEN"];
    assert.deepEqual(
      [...read]
        .map((name) => name.slice(1, -1))
        .filter((name) => !others.includes(name))
        .sort(),
      Object.keys(shown).sort(),
    );
    for (const doc of ["docs/protocol.md", "README.md"]) {
      // No skip: a missing file fails here.
      const text = fs.readFileSync(path.join(ROOT, doc), "utf8");
      const settings = text.slice(text.indexOf("\n## Settings\n"));
      const rows = new Map<string, string>();
      for (const line of settings.split("\n").filter((l) => l.startsWith("| `"))) {
        const [, name, value] = line.split("|").map((cell) => cell.trim());
        rows.set(name!.replaceAll("`", ""), value!);
      }
      assert.deepEqual(Object.fromEntries(rows), shown, doc);
    }
  });

  it("reads the variables, an empty one meaning its default", () => {
    const config = loadConfig({
      PORT: "0",
      HOST: "0.0.0.0",
      HERALD_AUTH: "jwt",
      HERALD_JWT_SECRET: "s".repeat(32),
      HERALD_DURABILITY: "normal",
      HERALD_MAX_PAYLOAD: "1000",
      HERALD_MAX_INFLIGHT: "5",
      HERALD_RATE_LIMIT: "",
      HERALD_RETENTION_MS: " 60000 ",
      HERALD_NODE_ID: "n1",
    });
    assert.equal(config.port, 0);
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.auth, "jwt");
    assert.equal(config.jwtSecret, "s".repeat(32));
    assert.equal(config.durability, "normal");
    assert.equal(config.maxPayload, 1000);
    assert.equal(config.maxInflight, 5);
    assert.equal(config.rateLimit, 1000);
    assert.equal(config.retentionMs, 60000);
    assert.equal(config.nodeId, "n1");
  });

  it("lists every bad variable in one ConfigError", () => {
    const bad = {
      PORT: "70000",
      HERALD_AUTH: "ldap",
      HERALD_DURABILITY: "fast",
      HERALD_MAX_PAYLOAD: "0",
      HERALD_MAX_INFLIGHT: "1.5",
      HERALD_RATE_LIMIT: "lots",
      HERALD_ACK_TIMEOUT_MS: "-1",
      HERALD_MAX_DELIVERIES: "1e3",
      HERALD_MAX_BACKLOG: "0x10",
      HERALD_RETENTION_MESSAGES: "99999999999999999999",
      HERALD_TXN_CHECK_MS: "0",
      HERALD_STORE: "mysql",
      HERALD_LOG_LEVEL: "loud",
    };
    let error: unknown;
    try {
      loadConfig(bad);
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof ConfigError, "a ConfigError");
    assert.equal(error.problems.length, Object.keys(bad).length, error.message);
    for (const name of Object.keys(bad)) {
      assert.ok(
        error.problems.some((p) => p.startsWith(name)),
        `${name} is listed`,
      );
      assert.ok(error.message.includes(name));
    }
  });

  it("requires HERALD_JWT_SECRET with jwt auth and HERALD_DATABASE_URL with postgres", () => {
    assert.throws(
      () => loadConfig({ HERALD_AUTH: "jwt" }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes("HERALD_JWT_SECRET")),
    );
    assert.throws(
      () => loadConfig({ HERALD_STORE: "postgres", HERALD_AUTH: "jwt" }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.includes("HERALD_DATABASE_URL")) &&
        err.problems.some((p) => p.includes("HERALD_JWT_SECRET")),
    );
  });

  it("is frozen", () => {
    const config = loadConfig({}, { port: 0 });
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.equal(config.port, 0);
  });
});
