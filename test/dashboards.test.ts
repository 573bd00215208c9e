/**
 * docs/grafana-dashboard.json and docs/prometheus-alerts.yml against a running server: both parse,
 * every query and rule is well formed, and every Herald metric they name is in /metrics (a
 * histogram by its _bucket, _sum or _count series), so a renamed metric cannot leave a dashboard
 * panel empty or an alert silent. The cluster's metrics come from a node on PostgreSQL and Redis
 * beside the single one.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { pub, sub } from "./conformance.js";
import { connect, pgSchema, type RawSocket, REDIS_URL, ROOT, startServer, type TestServer } from "./helpers.js";

interface Panel {
  title: string;
  targets: { expr: string; refId: string }[];
}
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description?: string };
}

const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, "docs/grafana-dashboard.json"), "utf8")) as {
  panels: Panel[];
  templating: { list: { query: { query: string } }[] };
};
const alerts = parse(fs.readFileSync(path.join(ROOT, "docs/prometheus-alerts.yml"), "utf8")) as {
  groups: { name: string; rules: Rule[] }[];
};
const rules = alerts.groups.flatMap((g) => g.rules);

/** The metric names of a PromQL expression that are Herald's (`up` and the like are Prometheus'). */
const heraldMetrics = (expr: string) => [...expr.matchAll(/\bherald_[a-z0-9_]+/g)].map((m) => m[0]);

describe("dashboards and alerts", () => {
  let server: TestServer;
  let exposed: Set<string>;
  const sockets: RawSocket[] = [];

  before(async () => {
    server = await startServer();
    const [p, s] = await Promise.all([connect(server.url, { user: "dp" }), connect(server.url, { user: "ds" })]);
    sockets.push(p!, s!);
    await sub(s!, "room:dash");
    await pub(p!, "room:dash", "d1");
    exposed = new Set();
    const note = (text: string) => {
      for (const line of text.split("\n")) {
        const m = /^# TYPE (\S+) (\S+)/.exec(line);
        if (!m) continue;
        exposed.add(m[1]!);
        if (m[2] === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) exposed.add(m[1]! + suffix);
      }
    };
    note(await (await fetch(`${server.url}/metrics`)).text());
    const schema = await pgSchema();
    const node = await startServer({
      store: "postgres",
      databaseUrl: schema.url,
      redisUrl: REDIS_URL,
      redisPrefix: schema.name,
    });
    try {
      note(await (await fetch(`${node.url}/metrics`)).text());
    } finally {
      await node.close();
      await schema.drop();
    }
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it("the dashboard's panels each query, and name only metrics /metrics has", () => {
    assert.ok(dashboard.panels.length >= 10);
    const named = new Set<string>();
    for (const panel of dashboard.panels) {
      assert.ok(panel.targets.length > 0, `${panel.title}: no query`);
      for (const t of panel.targets) for (const m of heraldMetrics(t.expr)) named.add(m);
    }
    for (const v of dashboard.templating.list) for (const m of heraldMetrics(v.query.query)) named.add(m);
    const missing = [...named].filter((m) => !exposed.has(m));
    assert.deepEqual(missing, []);
    // The stages an operator needs to read a slow publish are all there.
    for (const m of [
      "herald_publish_stage_seconds_bucket",
      "herald_publish_durable_seconds_bucket",
      "herald_durable_delivered_seconds_bucket",
    ]) {
      assert.ok(named.has(m), m);
    }
  });

  it("every alert has a name, a severity, a summary and an expression whose Herald metrics exist", () => {
    assert.ok(rules.length >= 8);
    const names = new Set<string>();
    for (const rule of rules) {
      assert.match(rule.alert, /^Herald[A-Z]\w+$/);
      assert.ok(!names.has(rule.alert), `${rule.alert} twice`);
      names.add(rule.alert);
      assert.ok(["critical", "warning", "info"].includes(rule.labels.severity), rule.alert);
      assert.ok(rule.annotations.summary.length > 0, rule.alert);
      if (rule.for !== undefined) assert.match(rule.for, /^\d+[smh]$/, rule.alert);
      const missing = heraldMetrics(rule.expr).filter((m) => !exposed.has(m));
      assert.deepEqual(missing, [], rule.alert);
    }
  });
});
