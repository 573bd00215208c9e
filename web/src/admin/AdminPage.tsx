/**
 * The operator's page (`/admin`, PROTOCOL.md "HTTP"): live charts of what flows and how fast, then
 * topics, consumer groups and subscriptions, busiest first, and a group's dead letters with a
 * retry. For admins: a refused stats read (FORBIDDEN) shows who is signed in instead.
 */
import { useEffect, useMemo, useState } from "react";
import type { Message } from "../../../shared/protocol.js";
import type { Identity } from "../session.js";
import { Chart } from "./Chart.js";
import {
  ApiError,
  type Point,
  point,
  readDeadLetters,
  readMetrics,
  readStats,
  retryDeadLetters,
  type Stats,
} from "./feed.js";

/** Two minutes of one-second points. */
const POINTS = 120;
/** Rows a table shows before "show all": enough to see, light with 10k topics. */
const ROWS = 50;

type Group = Stats["groups"][number];

export function AdminPage({ identity, onSignOut }: { identity: Identity; onSignOut: () => void }) {
  const points = useMetrics();
  const { stats, rates, error } = useStats(identity);
  const [open, setOpen] = useState<Group | undefined>();

  if (error instanceof ApiError && (error.code === "FORBIDDEN" || error.code === "UNAUTHORIZED")) {
    return (
      <main className="admin-refused" role="alert">
        <h1>Only admins can see this page</h1>
        <p className="muted">
          Signed in as <strong>{identity.user}</strong>: {error.message}.
        </p>
        <p>
          <a href="/">Back to the chat</a> ·{" "}
          <button type="button" className="small-button" onClick={onSignOut}>
            Sign in as someone else
          </button>
        </p>
      </main>
    );
  }
  const columns = (pick: (p: Point) => number | null) => points.map(pick);
  const t = columns((p) => p.t);
  const last = points[points.length - 1];
  return (
    <main className="admin">
      <header className="admin-header">
        <div className="logo" aria-hidden="true">
          H
        </div>
        <h1>Herald operator</h1>
        <span className="muted" data-testid="node">
          {stats ? `node ${stats.node} · ${stats.connections} connections · ${stats.topics.length} topics` : "…"}
        </span>
        <span className="spacer" />
        {last && (
          <span className="admin-now" data-testid="rates">
            {Math.round(last.publishes)} publishes/s · {Math.round(last.deliveries)} deliveries/s
          </span>
        )}
        <a href="/" className="small-button">
          Chat
        </a>
      </header>
      {points.length === 0 && error === undefined && <p className="muted admin-note">Waiting for /metrics…</p>}
      {error !== undefined && !(error instanceof ApiError) ? (
        <p className="admin-note danger">{String(error)}</p>
      ) : null}
      <div className="admin-charts">
        <Chart
          testId="chart-rates"
          title="Messages"
          unit="per second"
          series={[
            { label: "publishes", color: "#4f5bd5" },
            { label: "deliveries", color: "#1f9d55" },
            { label: "acks", color: "#c98a00" },
          ]}
          data={[t, columns((p) => p.publishes), columns((p) => p.deliveries), columns((p) => p.acks)]}
        />
        <Chart
          testId="chart-latency"
          title="Publish to durable"
          unit="ms"
          series={[
            { label: "p50", color: "#4f5bd5" },
            { label: "p99", color: "#c4314b" },
          ]}
          data={[t, columns((p) => p.p50Ms), columns((p) => p.p99Ms)]}
        />
        <Chart
          testId="chart-connections"
          title="Connections"
          unit=""
          series={[{ label: "live", color: "#4f5bd5" }]}
          data={[t, columns((p) => p.connections)]}
        />
        <Chart
          testId="chart-lag"
          title="Event-loop lag p99"
          unit="ms"
          series={[{ label: "p99", color: "#c98a00" }]}
          data={[t, columns((p) => p.lagMs)]}
        />
      </div>
      {stats && (
        <div className="admin-tables">
          <Table
            title="Consumer groups"
            testId="groups"
            rows={stats.groups}
            sort={(g) => g.lag}
            header={["group", "topic", "backlog", "oldest unacked", "live members", "in flight", ""]}
            cells={(g) => [
              g.group,
              g.topic,
              g.lag,
              age(stats.now, g.oldestUnackedTs),
              g.members,
              g.inflight,
              <button key="dead" type="button" className="small-button" onClick={() => setOpen(g)}>
                Dead letters
              </button>,
            ]}
            rowKey={(g) => `${g.topic}\u0000${g.group}`}
          />
          {open && <DeadLetters identity={identity} group={open} onClose={() => setOpen(undefined)} />}
          <Table
            title="Topics"
            testId="topics"
            rows={stats.topics}
            sort={(x) => rates.get(x.topic) ?? 0}
            header={["topic", "head", "msg/s"]}
            cells={(x) => [x.topic, x.head, round(rates.get(x.topic) ?? 0)]}
            rowKey={(x) => x.topic}
          />
          <Table
            title="Subscriptions"
            testId="subscriptions"
            rows={stats.subscriptions}
            sort={(s) => s.lag}
            header={["topic", "client", "lag", "oldest unacked", "live"]}
            cells={(s) => [
              s.topic,
              `${s.user}/${s.clientId}`,
              s.lag,
              age(stats.now, s.oldestUnackedTs),
              s.live ? "yes" : "no",
            ]}
            rowKey={(s) => `${s.user}\u0000${s.clientId}\u0000${s.topic}`}
          />
        </div>
      )}
    </main>
  );
}

/** The charts' points: /metrics scraped every second, each point from the last two scrapes. */
function useMetrics(): Point[] {
  const [points, setPoints] = useState<Point[]>([]);
  useEffect(() => {
    let previous: { text: string; at: number } | undefined;
    let stopped = false;
    const tick = async () => {
      const text = await readMetrics().catch(() => undefined);
      if (stopped || text === undefined) return;
      const at = performance.now();
      if (previous) {
        const p = point(previous.text, text, (at - previous.at) / 1000);
        setPoints((ps) => [...ps.slice(-(POINTS - 1)), p]);
      }
      previous = { text, at };
    };
    void tick();
    const timer = setInterval(tick, 1000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  return points;
}

/** The stats every two seconds, and each topic's publish rate between the last two reads. */
function useStats(identity: Identity) {
  const [state, setState] = useState<{ stats?: Stats; rates: Map<string, number>; error?: unknown }>({
    rates: new Map(),
  });
  useEffect(() => {
    let previous: Stats | undefined;
    let stopped = false;
    const tick = async () => {
      try {
        const stats = await readStats(identity);
        if (stopped) return;
        const rates = new Map<string, number>();
        if (previous) {
          const seconds = Math.max(0.001, (stats.now - previous.now) / 1000);
          const before = new Map(previous.topics.map((t) => [t.topic, t.head]));
          for (const t of stats.topics) rates.set(t.topic, (t.head - (before.get(t.topic) ?? t.head)) / seconds);
        }
        previous = stats;
        setState({ stats, rates });
      } catch (error) {
        if (!stopped) setState((s) => ({ ...s, error }));
      }
    };
    void tick();
    const timer = setInterval(tick, 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [identity]);
  return state;
}

function Table<T>({
  title,
  testId,
  rows,
  sort,
  header,
  cells,
  rowKey,
}: {
  title: string;
  testId: string;
  rows: T[];
  sort: (row: T) => number;
  header: string[];
  cells: (row: T) => React.ReactNode[];
  rowKey: (row: T) => string;
}) {
  const [filter, setFilter] = useState("");
  const [all, setAll] = useState(false);
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const kept = f ? rows.filter((r) => rowKey(r).toLowerCase().includes(f)) : rows;
    return [...kept].sort((a, b) => sort(b) - sort(a));
  }, [rows, filter, sort, rowKey]);
  const visible = all ? shown : shown.slice(0, ROWS);
  return (
    <section className="admin-card" data-testid={testId}>
      <div className="admin-card-head">
        <h2>
          {title} <span className="muted">{rows.length}</span>
        </h2>
        <input
          type="search"
          placeholder="Filter"
          aria-label={`Filter ${title.toLowerCase()}`}
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
        />
      </div>
      {shown.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <table>
          <thead>
            <tr>
              {header.map((h) => (
                <th key={h}>{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {visible.map((row) => (
              <tr key={rowKey(row)}>
                {cells(row).map((c, i) => (
                  <td key={header[i] ?? i}>{c}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {shown.length > visible.length && (
        <button type="button" className="small-button" onClick={() => setAll(true)}>
          Show all {shown.length}
        </button>
      )}
    </section>
  );
}

function DeadLetters({ identity, group, onClose }: { identity: Identity; group: Group; onClose: () => void }) {
  const [letters, setLetters] = useState<Message[] | undefined>();
  const [note, setNote] = useState("");
  const load = () =>
    readDeadLetters(identity, group.topic, group.group).then(setLetters, (e: unknown) => setNote(String(e)));
  // biome-ignore lint/correctness/useExhaustiveDependencies: reloaded when another group is opened.
  useEffect(() => {
    setLetters(undefined);
    setNote("");
    void load();
  }, [group.topic, group.group]);
  const retry = async () => {
    try {
      const n = await retryDeadLetters(identity, group.topic, group.group);
      setNote(`${n} dead letter${n === 1 ? "" : "s"} handed back to ${group.group}`);
    } catch (e) {
      setNote(String(e));
    }
  };
  return (
    <section className="admin-card" data-testid="dead-letters">
      <div className="admin-card-head">
        <h2>
          Dead letters of {group.group} <span className="muted">on {group.topic}</span>
        </h2>
        <button type="button" className="small-button" onClick={retry} disabled={!letters || letters.length === 0}>
          Retry all
        </button>
        <button type="button" className="small-button" onClick={() => void load()}>
          Reload
        </button>
        <button type="button" className="small-button" onClick={onClose}>
          Close
        </button>
      </div>
      {note && (
        <p className="admin-note" role="status">
          {note}
        </p>
      )}
      <p className="muted">
        Newest first. Each died after its last attempt (HERALD_MAX_DELIVERIES); Retry all hands them back to the group
        with their delivery count reset.
      </p>
      {letters === undefined ? (
        <p className="muted">Loading…</p>
      ) : letters.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>seq</th>
              <th>id</th>
              <th>from</th>
              <th>died</th>
              <th>payload</th>
            </tr>
          </thead>
          <tbody>
            {[...letters].reverse().map((m) => (
              <tr key={m.seq}>
                <td>{m.seq}</td>
                <td className="mono">{m.id}</td>
                <td>{m.from}</td>
                <td>{new Date(m.ts).toLocaleTimeString()}</td>
                <td className="mono payload">{JSON.stringify(m.payload)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const round = (n: number) => Math.round(n * 10) / 10;

function age(now: number, ts: number | undefined): string {
  if (ts === undefined) return "-";
  const ms = Math.max(0, now - ts);
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
