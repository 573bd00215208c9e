/** server/config.ts against PROTOCOL.md "Running": the defaults, one error listing every bad variable, frozen. */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../server/config.js";

const PROTOCOL = "/work/shared/PROTOCOL.md";

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

  it("matches the defaults PROTOCOL.md states", { skip: !fs.existsSync(PROTOCOL) && "no PROTOCOL.md" }, () => {
    const text = fs.readFileSync(PROTOCOL, "utf8");
    const config = loadConfig({});
    const row = (name: string) => {
      const line = text.split("\n").find((l) => l.startsWith("|") && l.includes(`\`${name}\``));
      assert.ok(line, `PROTOCOL.md has a row for ${name}`);
      return line.split("|")[2]!.trim();
    };
    assert.equal(row("PORT"), `\`${config.port}\``);
    assert.equal(row("HOST"), `\`${config.host}\``);
    assert.equal(path.resolve(row("HERALD_DATA_DIR").replaceAll("`", "")), config.dataDir);
    assert.equal(row("HERALD_AUTH"), `\`${config.auth}\``);
    assert.equal(row("HERALD_DURABILITY"), `\`${config.durability}\``);
    assert.equal(row("HERALD_STORE"), `\`${config.store}\``);
    assert.equal(row("HERALD_RETENTION_MESSAGES"), `${config.retentionMessages}, 30 days`);
    assert.equal(config.retentionMs, 30 * 86_400_000);
    assert.equal(row("HERALD_TXN_CHECK_MS"), `${config.txnCheckMs}, ${config.txnMaxChecks}`);
    // The limits are stated in the text as "(default N)" or "HERALD_X (default N)".
    const stated = (setting: string, value: number) =>
      assert.ok(
        new RegExp(`${setting}\`? \\(default ${value}[;)]`).test(text),
        `PROTOCOL.md says ${setting} defaults to ${value}`,
      );
    stated("HERALD_MAX_INFLIGHT", config.maxInflight);
    stated("HERALD_ACK_TIMEOUT_MS", config.ackTimeoutMs);
    stated("HERALD_MAX_DELIVERIES", config.maxDeliveries);
    stated("HERALD_MAX_BACKLOG", config.maxBacklog);
    stated("HERALD_TXN_CHECK_MS", config.txnCheckMs);
    stated("HERALD_TXN_MAX_CHECKS", config.txnMaxChecks);
    assert.match(text, new RegExp(`HERALD_MAX_PAYLOAD bytes as UTF-8 JSON \\(default ${config.maxPayload}\\)`));
    assert.match(
      text,
      new RegExp(`over \`HERALD_RATE_LIMIT\` a second per connection \\(default ${config.rateLimit};`),
    );
  });

  it("reads the variables, an empty one meaning its default", () => {
    const config = loadConfig({
      PORT: "0",
      HOST: "0.0.0.0",
      HERALD_AUTH: "jwt",
      HERALD_JWT_SECRET: "s",
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
    assert.equal(config.jwtSecret, "s");
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
